package workqueue

import (
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// watcher is flowlab's own eye on the broker (a rabbit.Watcher, connected
// directly rather than through the cuttable path). Once a second it reads
// every queue's depth and consumer count.
type watcher struct {
	*rabbit.Watcher
	s *Scenario

	mu     sync.Mutex // guards the fields below
	emails amqp.Queue
	retry  [maxAttempts]int // ready per retry queue, by attempt
	dlq    int
	known  bool // the queues have been read at least once
}

func newWatcher(s *Scenario) *watcher {
	w := &watcher{s: s}
	w.Watcher = s.broker.NewWatcher(w.look)
	return w
}

// look reads every queue, or none while the topology is not declared yet (no
// service has connected).
func (w *watcher) look(queues *rabbit.Queues) {
	emails, ok := queues.Peek(w.s.queue)
	if !ok {
		return
	}
	var retry [maxAttempts]int
	for a := 1; a < maxAttempts; a++ {
		q, ok := queues.Peek(w.s.retryQueue(a))
		if !ok {
			return
		}
		retry[a] = q.Messages
	}
	dlq, ok := queues.Peek(w.s.dlq)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emails, w.retry, w.dlq, w.known = emails, retry, dlq.Messages, true
}

// emailsState is the emails queue's node: whether the broker answers, and
// the queue's depth and consumers.
func (w *watcher) emailsState() flow.NodeState {
	st, err := w.State()
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := flow.NodeState{State: st}
	switch {
	case st != "up":
		ns.Badges = w.s.broker.NoBroker(err)
	case w.known:
		ns.Badges = []string{fmt.Sprintf("ready %d", w.emails.Messages), fmt.Sprintf("consumers %d", w.emails.Consumers)}
	}
	ns.Badges = append(ns.Badges, w.s.broker.PathBadges()...)
	return ns
}

// retryState shows how many jobs wait after which failed attempt.
func (w *watcher) retryState() flow.NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.known {
		return flow.NodeState{State: "absent"}
	}
	ns := flow.NodeState{State: "up"}
	for a, n := range w.retry {
		if n > 0 {
			ns.Badges = append(ns.Badges, fmt.Sprintf("after attempt %d (%s): %d", a, retryDelay(a), n))
		}
	}
	return ns
}

func (w *watcher) dlqState() flow.NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.known {
		return flow.NodeState{State: "absent"}
	}
	return flow.NodeState{State: "up", Badges: []string{fmt.Sprintf("ready %d", w.dlq)}}
}

func (w *watcher) emailsDepth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emails.Messages
}
