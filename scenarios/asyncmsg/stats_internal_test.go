package asyncmsg

import (
	"slices"
	"testing"
	"time"

	"flowlab/flow"
)

// order-service's node and the group's are drawn at every frame, ten times
// a second: the badge formats made with fmt are made only for badges that
// show, and the badges read as before.
func TestBadgeFormatsAreMadeOnlyWhenShown(t *testing.T) {
	set := defaultSettings()
	if allocs := testing.AllocsPerRun(100, func() { producerState(nil, set, 0, 0, lastBurst{}) }); allocs > 9 {
		t.Errorf("a stopped order-service's node took %.0f allocations, want at most 9", allocs)
	}
	burst := lastBurst{n: 1000, took: 2300 * time.Millisecond}
	if got := producerState(nil, set, 0, 0, burst).Badges(); !slices.Contains(got, "burst 1000: 2.3 s") {
		t.Errorf("badges %q, want the last burst's", got)
	}

	r := newRebalances(nil)
	g := group{started: 3, live: 3, session: 45}
	if allocs := testing.AllocsPerRun(100, func() { r.status(time.Now(), g) }); allocs > 5 {
		t.Errorf("a stable group's node took %.0f allocations, want at most 5", allocs)
	}
	r.active, r.reason, r.since = true, "m4 joined", time.Now().Add(-3*time.Second)
	if _, facts := r.status(time.Now(), g); !slices.Contains(flow.Badges(facts), "m4 joined, 3 s so far") {
		t.Errorf("badges %q, want the rebalance's reason and time", flow.Badges(facts))
	}
	g.held, g.left = []string{"m2"}, 20*time.Second
	if _, facts := r.status(time.Now(), g); !slices.Contains(flow.Badges(facts), "session timeout 45 s: 20 s left") {
		t.Errorf("badges %q, want the session timeout's time left", flow.Badges(facts))
	}
}
