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

	mu       sync.Mutex // guards the fields below
	emails   amqp.Queue
	backlog  rabbit.Backlog
	catching bool             // the emails queue's backlog is draining
	retry    [maxAttempts]int // ready per retry queue, by attempt
	dlq      int
	known    bool // the queues have been read at least once
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
	w.catching = w.backlog.Read(emails.Messages)
}

// emailsState is the emails queue's node: whether the broker answers, the
// queue's depth and consumers, whether a backlog is draining, and what the
// learner did to the path.
func (w *watcher) emailsState() flow.NodeState {
	st, err := w.State()
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := st == "up" && w.known
	var q amqp.Queue
	if seen {
		q = w.emails
	}
	catching := seen && w.catching
	ready := "ready %d"
	if catching {
		ready = rabbit.CatchingUp
	}
	ns := flow.NodeState{State: st, Facts: w.s.broker.ReachFacts(err)}
	ns.Facts = append(ns.Facts,
		flow.Flag("exists", seen, ""),
		flow.Count("ready", int64(q.Messages), ready).When(seen),
		flow.Flag("catching-up", catching, ""), // the ready badge says so
		flow.Count("consumers", int64(q.Consumers), "consumers %d").When(seen),
	)
	ns.Facts = append(ns.Facts, w.s.broker.PathFacts()...)
	return ns
}

// retryState shows how many jobs wait after which failed attempt: one fact
// per retry queue, so that a check reads each by its name.
func (w *watcher) retryState() flow.NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := flow.NodeState{State: "absent"}
	if w.known {
		ns.State = "up"
	}
	total := 0
	for _, n := range w.retry {
		total += n
	}
	ns.Facts = make([]flow.Fact, 0, 2+len(retryFacts))
	ns.Facts = append(ns.Facts, flow.Flag("exists", w.known, ""), flow.Count("ready", int64(total), ""))
	for a, f := range retryFacts {
		n, format := w.retry[a+1], "" // a badge only for a queue with jobs
		if n > 0 {
			format = f.format
		}
		ns.Facts = append(ns.Facts, flow.Count(f.name, int64(n), format))
	}
	return ns
}

// retryFacts name the fact of each retry queue, by attempt from 1, and say
// how its badge reads. They are made once, not at each of the ten frames a
// second that ask for the node.
var retryFacts = func() (fs [maxAttempts - 1]struct{ name, format string }) {
	for i := range fs {
		a := i + 1
		fs[i].name = fmt.Sprintf("ready-after-attempt-%d", a)
		fs[i].format = fmt.Sprintf("after attempt %d (%s): %%d", a, retryDelay(a))
	}
	return fs
}()

func (w *watcher) dlqState() flow.NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := flow.NodeState{State: "absent"}
	if w.known {
		ns.State = "up"
	}
	ns.Facts = []flow.Fact{
		flow.Flag("exists", w.known, ""),
		flow.Count("ready", int64(w.dlq), "ready %d").When(w.known),
	}
	return ns
}

func (w *watcher) emailsDepth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emails.Messages
}
