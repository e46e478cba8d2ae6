package rabbit_test

import (
	"testing"

	"flowlab/scenarios/internal/rabbit"
)

// A queue is catching up only while a backlog of 10 or more falls: not
// while it grows or stands still, not for a few messages, and no longer once
// it is empty.
func TestBacklogCatchingUp(t *testing.T) {
	var b rabbit.Backlog
	for i, c := range []struct {
		ready int
		want  bool
	}{
		{0, false}, {40, false}, {100, false}, {100, false}, {60, true}, {70, false}, {20, true}, {0, false},
		{5, false}, {3, false}, // a few messages are no backlog
	} {
		if got := b.Read(c.ready); got != c.want {
			t.Errorf("reading %d (ready %d): catching up %v, want %v", i, c.ready, got, c.want)
		}
	}
}
