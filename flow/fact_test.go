package flow_test

import (
	"fmt"
	"testing"

	"flowlab/flow"
)

// Badges made without fmt for the common formats are what fmt makes.
func TestBadgesAreWhatFmtMakes(t *testing.T) {
	counts := []string{"%d", "%d ready", "lag %d of %d", "depth %5d", "%d%%", "100%% %d", "%x", "%d messages (%s)", "%v"}
	for _, format := range counts {
		for _, v := range []int64{0, -3, 42, 1 << 40} {
			if got, want := flow.Count("n", v, format).Badge, fmt.Sprintf(format, v); got != want {
				t.Errorf("Count %q of %d: badge %q, fmt says %q", format, v, got, want)
			}
		}
	}
	words := []string{"%s", "error: %s", "%q", "%s and %s", "%10s", "%s%%"}
	for _, format := range words {
		for _, v := range []string{"up", "a %d in it", "é"} {
			if got, want := flow.Word("w", v, format).Badge, fmt.Sprintf(format, v); got != want {
				t.Errorf("Word %q of %q: badge %q, fmt says %q", format, v, got, want)
			}
		}
	}
}

func BenchmarkCount(b *testing.B) {
	for i := range b.N {
		flow.Count("ready", int64(i), "%d ready")
	}
}
