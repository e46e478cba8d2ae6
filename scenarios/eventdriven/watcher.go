package eventdriven

import (
	"sync"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// watcher is flowlab's own eye on the broker (a rabbit.Watcher, connected
// directly, not through the cuttable path). Once a second it reads the depth
// and consumer count of every durable queue and the DLQ. Exclusive queues are
// visible only to their own connection, so their consumers report them.
type watcher struct {
	*rabbit.Watcher
	s *Scenario

	mu       sync.Mutex // guards the fields below
	dlqReady int
	dlqKnown bool
}

func newWatcher(s *Scenario) *watcher {
	w := &watcher{s: s}
	w.Watcher = s.broker.NewWatcher(w.look)
	return w
}

// look reads every queue it can see.
func (w *watcher) look(queues *rabbit.Queues) {
	for _, c := range w.s.consumers {
		c.mu.Lock()
		durable := c.set.durable || c.durableExists
		// The durable queue is where the consumer's copies go only while it
		// is bound and no exclusive queue replaced it.
		inUse := c.durableExists && (c.queue == c.durableQueue || c.queue == "" && c.set.durable)
		c.mu.Unlock()
		if !durable {
			continue
		}
		at := time.Now()
		if q, ok := queues.Peek(c.durableQueue); ok {
			c.setDepth(q.Messages, q.Consumers)
			if inUse && q.Messages == 0 {
				c.queueEmpty(at)
			}
		}
	}
	q, ok := queues.Peek(w.s.dlq)
	w.mu.Lock()
	w.dlqReady, w.dlqKnown = q.Messages, ok
	w.mu.Unlock()
}

// brokerState is the exchange node's state: whether the broker answers at all.
func (w *watcher) brokerState() flow.NodeState {
	st, err := w.State()
	if st != "unreachable" {
		err = "" // what failed last, once the broker answers again, is past
	}
	return flow.NodeState{State: st, Facts: w.s.broker.ReachFacts(err)}
}

func (w *watcher) dlqState() flow.NodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := flow.NodeState{State: "absent"}
	ready := 0
	if w.dlqKnown {
		ns.State, ready = "up", w.dlqReady
	}
	ns.Facts = []flow.Fact{
		flow.Flag("exists", w.dlqKnown, ""),
		flow.Count("ready", int64(ready), "ready %d").When(w.dlqKnown),
	}
	return ns
}

// totalDepth is the number of messages ready in the consumers' queues.
func (w *watcher) totalDepth() int {
	n := 0
	for _, c := range w.s.consumers {
		c.mu.Lock()
		n += c.ready
		c.mu.Unlock()
	}
	return n
}
