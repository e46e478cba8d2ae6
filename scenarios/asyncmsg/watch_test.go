package asyncmsg_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

// The watch tells the view when a service's state word changes (here
// order-service's, from sending to idle when its rate goes to 0), with the
// node's badges, and never a partition's, which flips with the load.
func TestWatchTellsAServicesNewStateWord(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 20})
	// The watch tells changes from what it saw before: it ended the
	// group's first rebalance in a look that saw order-service sending.
	eventually(t, 15*time.Second, "the group formed", func() bool { return len(l.events.of(flow.KindRebalance)) > 0 })
	time.Sleep(100 * time.Millisecond) // that look is over
	mustSet(t, l.s, "rate", 0)
	var told []flow.Event
	eventually(t, 10*time.Second, "order-service's idle told", func() bool {
		told = l.events.where(func(ev flow.Event) bool {
			return ev.Kind == flow.KindState && ev.Detail.Node == "order-service" && ev.Detail.State == "idle"
		})
		return len(told) > 0
	})
	if p := told[0].Detail.Payload; !strings.Contains(p, "acks") {
		t.Errorf("order-service's idle was told with %q, want its badges (acks …)", p)
	}
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
