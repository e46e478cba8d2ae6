package progress_test

import (
	"path/filepath"
	"slices"
	"testing"
)

// Open sandboxes are kept per instance across a reopen, and forgotten one by
// one; an instance's prefix never finds another's (a is a prefix of ab).
func TestOpenSandboxesAreKeptPerInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := mustOpen(t, path)
	for _, x := range [][2]string{{"", "aaaaaaaa"}, {"", "bbbbbbbb"}, {"a", "a-cccccccc"}, {"ab", "ab-dddddddd"}} {
		if err := s.SandboxOpened(x[0], x[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SandboxGone("", "aaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path)
	for inst, want := range map[string][]string{"": {"bbbbbbbb"}, "a": {"a-cccccccc"}, "ab": {"ab-dddddddd"}, "z": nil} {
		got, err := s.Sandboxes(inst)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("instance %q: open sandboxes %v, want %v", inst, got, want)
		}
	}
}
