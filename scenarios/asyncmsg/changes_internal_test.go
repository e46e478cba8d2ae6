package asyncmsg

import (
	"testing"

	"flowlab/flow"
)

// Changes of one kind merge into one waiting change; others wait each on its
// own, at most maxWaiting, and one more is refused with a reason.
func TestChangesWaitingAreBounded(t *testing.T) {
	cs := newChanges()
	for range 2 * maxWaiting {
		cs.add(&change{node: "inventory", kind: restartKind, what: "commit-mode changed"})
	}
	if len(cs.queue) != 1 {
		t.Fatalf("%d restarts waiting, want them merged into 1", len(cs.queue))
	}
	for i := 1; i < maxWaiting; i++ {
		if err := cs.room(); err != nil {
			t.Fatalf("with %d waiting: %v", len(cs.queue), err)
		}
		cs.add(&change{node: "inventory", what: "replay"})
	}
	err := cs.room()
	if flow.KindOf(err) != flow.Unavailable {
		t.Fatalf("with %d waiting, room() = %v, want an unavailable error", len(cs.queue), err)
	}
	cs.next()
	if err := cs.room(); err != nil {
		t.Fatalf("after one started: %v", err)
	}
}
