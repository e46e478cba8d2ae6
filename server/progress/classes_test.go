package progress_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"flowlab/flow"
	"flowlab/server/progress"
)

// Learners joining a class at once with one name get " 2", " 3"… whatever
// its case, in join order, and never two rows under one key; the class,
// its roster and the instructor's key survive a reopen.
func TestJoinSuffixesTakenNamesAndSurvivesAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := mustOpen(t, path)
	key, err := s.TeachKey()
	if err != nil || len(key) != 22 {
		t.Fatalf("teach key %q: %v", key, err)
	}
	c, err := s.NewClass("lost-while-away")
	if err != nil || !progress.ValidCode(c.Code) || c.Lock != -1 {
		t.Fatalf("new class %+v: %v", c, err)
	}
	other, _ := s.NewClass("lost-while-away")
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"Ada", "ada", "ADA", "Ada", "aDa"}[i]
			if _, err := s.Join(fmt.Sprint("k", i), progress.Member{Class: c.Code, Name: name}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := s.Join("k0", progress.Member{Class: c.Code, Name: "Bob"}); flow.KindOf(err) != flow.Invalid {
		t.Errorf("a second row under one key: %v", err)
	}
	if _, err := s.Join("k9", progress.Member{Class: "NOPE22", Name: "Bob"}); flow.KindOf(err) != flow.NotFound {
		t.Errorf("a join to no class: %v", err)
	}
	if m, err := s.Join("k5", progress.Member{Class: other.Code, Name: "Ada"}); err != nil || m.Name != "Ada" || m.Seq != 1 {
		t.Errorf("another class's Ada: %+v %v", m, err)
	}
	s.Close()

	s = mustOpen(t, path)
	defer s.Close()
	if again, _ := s.TeachKey(); again != key {
		t.Errorf("the key changed with a reopen: %q, was %q", again, key)
	}
	if got, ok, err := s.Class(c.Code); !ok || err != nil || got.Walk != "lost-while-away" {
		t.Fatalf("class after a reopen: %+v %v %v", got, ok, err)
	}
	ms, err := s.Members(c.Code)
	if err != nil || len(ms) != 5 {
		t.Fatalf("roster: %+v %v", ms, err)
	}
	var names []string
	for i, m := range ms {
		if m.Seq != i+1 {
			t.Errorf("member %d has seq %d", i, m.Seq)
		}
		names = append(names, m.Name)
	}
	// Which spelling kept its name depends on the order the joins ran in;
	// what holds is that one did and each other got the next suffix.
	suffixes := map[string]bool{}
	plain := 0
	for _, n := range names {
		if len(n) == 3 {
			plain++
		} else {
			suffixes[n[len(n)-1:]] = true
		}
	}
	if plain != 1 || len(suffixes) != 4 || !suffixes["2"] || !suffixes["5"] {
		t.Errorf("names %v: want one plain Ada and suffixes 2 to 5", names)
	}
	if n, m, _ := s.Counts(); n != 2 || m != 6 {
		t.Errorf("counts %d classes, %d members", n, m)
	}
}
