package eventdriven_test

import (
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// A queue that is ABSENT is not captioned as if it existed: while its
// consumer is stopped, the exclusive queue's note says when it would exist.
func TestAbsentQueueIsNotCaptionedAsExisting(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	if note := queueNote(t, l, "queue-inventory"); !strings.HasPrefix(note, "amq.gen-") {
		t.Errorf("a running exclusive queue's note is %q, want its server-made name", note)
	}
	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory's queue absent", func(st flow.Stats) bool {
		return st.Nodes["queue-inventory"].State == "absent"
	})
	if note := queueNote(t, l, "queue-inventory"); strings.Contains(note, "exists") || !strings.Contains(note, "deleted when inventory disconnects") {
		t.Errorf("the absent queue's note is %q: it must not say it exists", note)
	}
}

func queueNote(t *testing.T, l *lab, id string) string {
	t.Helper()
	for _, n := range l.View().Nodes {
		if n.ID == id {
			return n.Note
		}
	}
	t.Fatalf("no node %q in the view", id)
	return ""
}
