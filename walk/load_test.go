package walk_test

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"flowlab/walk"
	"flowlab/walks"
)

// TestExampleWalkLoads loads the shipped exclusive-vs-durable walk against
// the test catalogs. Every shipped walk against the live scenarios' knobs is
// the server's test, which can open the scenarios.
func TestExampleWalkLoads(t *testing.T) {
	src, err := fs.ReadFile(walks.Files, "exclusive-vs-durable.md")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := walk.Load(fstest.MapFS{"exclusive-vs-durable.md": {Data: src}}, catalogs(t))
	if err != nil {
		t.Fatal(err)
	}
	w := ws[0]
	if w.ID != "exclusive-vs-durable" || w.Pattern != "event-driven" || w.Minutes != 6 || len(w.Learn) != 2 {
		t.Errorf("header = %q %q %d %q", w.ID, w.Pattern, w.Minutes, w.Learn)
	}
	var kinds []string
	for _, s := range w.Steps {
		kinds = append(kinds, s.Kind)
	}
	want := []string{"read", "predict", "act", "check", "explain", "predict", "act", "check", "explain"}
	if !slices.Equal(kinds, want) {
		t.Errorf("steps = %q, want %q", kinds, want)
	}
	lines := strings.Split(string(src), "\n")
	for _, s := range w.Steps {
		if h := lines[s.Line-1]; !strings.HasPrefix(h, "## ") || !strings.HasSuffix(h, ": "+s.Title) {
			t.Errorf("step %q says it starts on line %d, which is %q", s.Title, s.Line, h)
		}
	}
}
