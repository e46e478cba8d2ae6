package asyncmsg

import (
	"testing"
	"time"
)

// order-service sleeps until its next event is due, not a fixed short tick,
// and never so long that it misses a changed knob.
func TestOrderServiceSleepsUntilTheNextEventIsDue(t *testing.T) {
	for _, c := range []struct {
		owed float64
		rate int
		want time.Duration
	}{
		{0, 20, 51 * time.Millisecond},   // one event every 50 ms
		{0.5, 20, 26 * time.Millisecond}, // half of one owed already
		{0, 0, 100 * time.Millisecond},   // nothing to send: look at the knobs again
		{0, 1, 100 * time.Millisecond},   // one a second: still look at the knobs
		{0, 2000, 10 * time.Millisecond}, // the most: chunks of 20 every 10 ms
		{3, 20, 10 * time.Millisecond},   // behind: go on soon
	} {
		if got := untilDue(c.owed, c.rate); got != c.want {
			t.Errorf("untilDue(%v, %d) = %v, want %v", c.owed, c.rate, got, c.want)
		}
	}
}
