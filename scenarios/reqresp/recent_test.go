package reqresp_test

import (
	"slices"
	"testing"
	"time"

	"flowlab/scenarios/reqresp"
)

// The recent calls are those that ended after t, however many went before
// them (the ring wraps) and even when a call was added after one that
// ended later.
func TestRecentCallsAreThoseEndedSince(t *testing.T) {
	base := time.Now()
	var ends []time.Time
	for i := range 10_000 { // more than the ring holds: it wraps twice
		ends = append(ends, base.Add(time.Duration(i)*time.Millisecond))
	}
	last := ends[len(ends)-1]
	// A call that ended just after the cut, added after one that ended just
	// before it.
	cut := last.Add(-100 * time.Millisecond)
	ends = append(ends, cut.Add(time.Microsecond), cut.Add(-time.Microsecond))
	got := reqresp.RecentSince(ends, cut)
	var want []time.Time
	for _, at := range ends {
		if at.After(cut) {
			want = append(want, at)
		}
	}
	slices.SortFunc(got, time.Time.Compare)
	slices.SortFunc(want, time.Time.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d calls since the cut, want %d", len(got), len(want))
	}
	if got := reqresp.RecentSince(nil, base); len(got) != 0 {
		t.Fatalf("an empty ring has %d recent calls", len(got))
	}
}
