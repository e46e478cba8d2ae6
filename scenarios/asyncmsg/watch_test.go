package asyncmsg_test

import (
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

// The watch tells the view when a member's state word changes (here a new
// member, one more than the partitions, goes from joining to idle), and
// never a partition's, which flips with the load.
func TestWatchTellsAMembersNewStateWord(t *testing.T) {
	l := startLab(t, nil)
	told := func(node, state string) bool {
		return len(l.events.where(func(ev flow.Event) bool {
			return ev.Kind == flow.KindState && ev.Detail.Node == node && ev.Detail.State == state
		})) > 0
	}
	eventually(t, 15*time.Second, "three members consuming", func() bool {
		n := 0
		for id, st := range l.s.Stats().Nodes {
			if strings.HasPrefix(id, "m") && st.State == "consuming" {
				n++
			}
		}
		return n == 3
	})
	mustSet(t, l.s, "members", 4)
	eventually(t, 15*time.Second, "m4 idle told", func() bool { return told("m4", "idle") })
	for _, ev := range l.events.of(flow.KindState) {
		if s := ev.Detail.State; strings.HasPrefix(ev.Detail.Node, "p") && (s == "caught up" || s == "behind") {
			t.Errorf("a partition's state word was told: %s %s", ev.Detail.Node, s)
		}
	}
}
