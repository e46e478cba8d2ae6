package asyncmsg_test

import (
	"maps"
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
	waitConsuming(t, l, 3)
	mustSet(t, l.s, "members", 4)
	eventually(t, 15*time.Second, "m4 idle told", func() bool { return told("m4", "idle") })
	for _, ev := range l.events.of(flow.KindState) {
		if s := ev.Detail.State; strings.HasPrefix(ev.Detail.Node, "p") && (s == "caught up" || s == "behind") {
			t.Errorf("a partition's state word was told: %s %s", ev.Detail.Node, s)
		}
	}
}

// Every 50 ms the watch looks for a service whose state word changed. The
// words it compares are those the nodes show, and a look that finds none
// changed builds no node's facts and badges: it built every node's, as a
// frame does, which was 12 % of the process's CPU with eight sandboxes of
// this pattern.
func TestWatchComparesStateWordsOnly(t *testing.T) {
	l := startLab(t, nil)
	waitConsuming(t, l, 3)
	last := map[string]string{}
	eventually(t, 5*time.Second, "the watch's words are the nodes' state words", func() bool {
		words := l.s.TellChanges(last)
		nodes := l.s.Stats().Nodes
		for _, node := range []string{"order-service", "outside-client", "m1", "m2", "m3"} {
			if _, ok := words[node]; !ok {
				t.Fatalf("the watch does not look at %s: %v", node, words)
			}
		}
		for node, w := range words {
			if nodes[node].State != w {
				t.Logf("%s: the watch says %q, the node %q", node, w, nodes[node].State)
				return false
			}
		}
		return true
	})
	before := maps.Clone(last)
	allocs := testing.AllocsPerRun(20, func() { l.s.TellChanges(last) })
	if !maps.Equal(last, before) {
		t.Skipf("a state word changed while measuring: %v then %v", before, last)
	}
	if allocs > 20 {
		t.Errorf("a look at unchanged services made %.0f allocations, want at most 20: it builds more than state words", allocs)
	}
}

// waitConsuming waits until n members consume.
func waitConsuming(t *testing.T, l *lab, n int) {
	t.Helper()
	eventually(t, 15*time.Second, "members consuming", func() bool {
		c := 0
		for id, st := range l.s.Stats().Nodes {
			if strings.HasPrefix(id, "m") && st.State == "consuming" {
				c++
			}
		}
		return c == n
	})
}
