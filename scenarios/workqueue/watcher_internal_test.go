package workqueue

import (
	"fmt"
	"testing"
)

// The retry queue's node names a fact per attempt and badges those with
// jobs waiting, as fmt would write them, without formatting the names and
// badges again at every frame: that was 3.5 % of the process's CPU with
// eight sandboxes of this pattern.
func TestRetryNodeFactsAreMadeOnce(t *testing.T) {
	w := &watcher{known: true}
	w.retry[2] = 3
	ns := w.retryState()
	for a := 1; a < maxAttempts; a++ {
		name := fmt.Sprintf("ready-after-attempt-%d", a)
		v, ok := ns.Value(name)
		if !ok {
			t.Fatalf("no fact %s in %v", name, ns.Facts)
		}
		if v != int64(w.retry[a]) {
			t.Errorf("%s = %v, want %d", name, v, w.retry[a])
		}
	}
	if got, want := ns.Badges(), []string{"after attempt 2 (500ms): 3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("badges %q, want %q", got, want)
	}
	if allocs := testing.AllocsPerRun(100, func() { w.retryState() }); allocs > 5 {
		t.Errorf("the retry queue's node took %.0f allocations, want at most 5", allocs)
	}
}
