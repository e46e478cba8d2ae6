package asyncmsg

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"flowlab/flow"
)

// A slow change waits on the broker: members stopped and started again
// (commit mode, session timeout, a replay, a smaller topic), order-service's
// producer replaced (acks, linger), partitions added. The command that asks
// for one answers at once; the change runs in the background, one at a time
// in the order asked, never holding the lock other commands take, and its
// node shows it in progress until a state event announces its end.
type change struct {
	node string // the node that shows it
	// kind merges changes not yet started: a preset that changes the commit
	// mode and the session timeout restarts the members once.
	kind string
	what string
	// run does it; what is the change's description, merged ones included.
	run func(ctx context.Context, rt *runtime, what string) error
}

// Kinds of change.
const (
	restartKind  = "restart members"
	producerKind = "replace producer"
	membersKind  = "members"
)

// maxWaiting bounds the changes waiting to start. Changes of one kind merge,
// so only replays and partition changes can reach it: a flood of those is
// refused rather than queued for minutes.
const maxWaiting = 4

// changes is the queue of slow changes and the one in progress.
type changes struct {
	mu      sync.Mutex
	queue   []*change
	current *change
	wake    chan struct{}
}

func newChanges() *changes { return &changes{wake: make(chan struct{}, 1)} }

// add queues c, merged into a queued change of its kind when there is one.
func (cs *changes) add(c *change) {
	cs.mu.Lock()
	merged := false
	if c.kind != "" {
		for _, q := range cs.queue {
			if q.kind == c.kind {
				q.what += "; " + c.what
				merged = true
				break
			}
		}
	}
	if !merged {
		cs.queue = append(cs.queue, c)
	}
	cs.mu.Unlock()
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

// room refuses a change that does not merge when maxWaiting already wait.
func (cs *changes) room() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.queue) >= maxWaiting {
		return flow.Errorf(flow.Unavailable, "%d changes are already waiting to run: try again once they are done", len(cs.queue))
	}
	return nil
}

// next makes the first queued change the current one.
func (cs *changes) next() *change {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.current = nil
	if len(cs.queue) == 0 {
		return nil
	}
	cs.current = cs.queue[0]
	cs.queue = cs.queue[1:]
	return cs.current
}

// drop forgets the changes not done: they were asked of a run that ended.
func (cs *changes) drop() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.queue, cs.current = nil, nil
}

// busy reports the change in progress or waiting that touches the members,
// if any: while one runs, a member's slot may be empty between its stop and
// its start.
func (cs *changes) busy() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.current != nil && cs.current.kind != producerKind {
		return cs.current.what
	}
	for _, q := range cs.queue {
		if q.kind != producerKind {
			return q.what
		}
	}
	return ""
}

// facts are the change in progress on node and those waiting, "" for none.
func (cs *changes) facts(node string) []flow.Fact {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	current := ""
	if cs.current != nil && cs.current.node == node {
		current = cs.current.what
	}
	var waiting []string
	for _, q := range cs.queue {
		if q.node == node {
			waiting = append(waiting, q.what)
		}
	}
	return []flow.Fact{
		flow.Word("change", current, "in progress: %s"),
		flow.Word("changes-waiting", strings.Join(waiting, "; "), "waiting: %s"),
	}
}

// runChanges runs queued changes until ctx ends; the one in progress then
// ends promptly, since everything it waits on is bounded by ctx or by a
// member's goodbye.
func (s *Scenario) runChanges(ctx context.Context, rt *runtime) {
	defer close(rt.changesDone)
	defer s.changes.drop()
	for {
		c := s.changes.next()
		if c == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.changes.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		what := c.what // a current change is no longer merged into
		s.state(c.node, "changing", what+": in progress")
		began := time.Now()
		err := c.run(ctx, rt, what)
		took := time.Since(began)
		s.changes.mu.Lock()
		s.changes.current = nil
		s.changes.mu.Unlock()
		if err != nil {
			s.cfg.Emit.Emit(flow.Event{Kind: flow.KindError, From: c.node, Detail: flow.Detail{
				Node: c.node, Outcome: what + ": failed", Error: flow.MessageOf(err), LatencyMS: ms(took)}})
			continue
		}
		s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, From: c.node, Detail: flow.Detail{
			Node: c.node, State: "changed", LatencyMS: ms(took),
			Payload: fmt.Sprintf("%s: done in %.1f s", what, took.Seconds())}})
	}
}
