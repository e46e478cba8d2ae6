package progress_test

import (
	"crypto/rand"
	"encoding/json"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"flowlab/flow"
	"flowlab/server/progress"
)

func mustOpen(t *testing.T, path string) *progress.Store {
	t.Helper()
	s, err := progress.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRecord(t *testing.T, s *progress.Store, learner, walk string, update func(*progress.Walk) error) {
	t.Helper()
	if err := s.Record(learner, walk, update); err != nil {
		t.Fatal(err)
	}
}

func TestProgressSurvivesAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "flowlab", "progress.db")
	s := mustOpen(t, path)
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("folder %v (%v), want one made 0700", st.Mode(), err)
	}
	me, other := progress.NewLearner(), progress.NewLearner()
	finished := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	mustRecord(t, s, me, "exclusive-vs-durable", func(w *progress.Walk) error { return w.MarkDone(0) })
	mustRecord(t, s, me, "exclusive-vs-durable", func(w *progress.Walk) error { return w.MarkAnswered(1, "lost") })
	mustRecord(t, s, me, "exclusive-vs-durable", func(w *progress.Walk) error { return w.MarkPassed(3, true) })
	mustRecord(t, s, me, "exclusive-vs-durable", func(w *progress.Walk) error {
		w.MarkFinished(finished)
		return w.MarkJudged(1, true)
	})
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkPassed(2, false) })
	mustRecord(t, s, other, "auto-ack", func(w *progress.Walk) error { return w.MarkDone(5) })
	before, err := s.Learner(me)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path)
	defer s.Close()
	after, err := s.Learner(me)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("after a reopen\n%+v\nwant\n%+v", after, before)
	}
	if len(after.Walks) != 2 || after.Walks[0].Walk != "auto-ack" || after.Walks[1].Walk != "exclusive-vs-durable" {
		t.Fatalf("walks %+v, want auto-ack and exclusive-vs-durable, by id", after.Walks)
	}
	w := after.Walks[1]
	yes := true
	if !reflect.DeepEqual(w.Done, []int{0, 1, 3}) || !reflect.DeepEqual(w.Passed, []int{3}) || !reflect.DeepEqual(w.Assisted, []int{3}) ||
		!reflect.DeepEqual(w.Predictions, []progress.Prediction{{Step: 1, Answer: "lost", Correct: &yes}}) ||
		!w.Finished.Equal(finished) || w.Started.IsZero() || w.Started.After(time.Now()) {
		t.Errorf("exclusive-vs-durable: %+v", w)
	}
	if got, _ := s.Learner(other); len(got.Walks) != 1 || !reflect.DeepEqual(got.Walks[0].Done, []int{5}) {
		t.Errorf("the other learner's progress: %+v", got)
	}
	if fresh, err := s.Learner(progress.NewLearner()); err != nil || fresh.Walks == nil || len(fresh.Walks) != 0 {
		t.Errorf("a learner never seen: %+v (%v), want no walks (an empty list)", fresh, err)
	}
}

func TestSecondOpenOfTheFileFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := mustOpen(t, path)
	defer s.Close()
	start := time.Now()
	second, err := progress.Open(path)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !strings.Contains(err.Error(), "in use by another flowlab") || !strings.Contains(err.Error(), "-progress") {
		t.Errorf("error %q, want it to say the file is in use and name -progress", err)
	}
	if d := time.Since(start); d > progress.LockWait+2*time.Second {
		t.Errorf("the second Open took %v to fail", d)
	}
}

func TestUnreadableFilesAreRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	noise := make([]byte, 64<<10)
	rand.Read(noise)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A real progress file, cut short after its meta pages.
	good := filepath.Join(dir, "good.db")
	s := mustOpen(t, good)
	for range 50 {
		mustRecord(t, s, progress.NewLearner(), "auto-ack", func(w *progress.Walk) error { return w.MarkDone(1) })
	}
	s.Close()
	whole, _ := os.ReadFile(good)

	// Another program's bbolt file, and one whose learner record is not JSON.
	foreign := filepath.Join(dir, "foreign.db")
	junk := filepath.Join(dir, "junk.db")
	for path, fill := range map[string]func(*bolt.Tx) error{
		foreign: func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err },
		junk: func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("learners"))
			if err != nil {
				return err
			}
			return b.Put([]byte(progress.NewLearner()), []byte("{not json"))
		},
	} {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fill); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}

	for name, path := range map[string]string{
		"text":      write("text.db", []byte("learner,walk\nabc,auto-ack\n")),
		"noise":     write("noise.db", noise),
		"cut short": write("cut.db", whole[:8192+100]),
		"foreign":   foreign,
		"junk":      junk,
	} {
		s, err := progress.Open(path)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !strings.Contains(err.Error(), "is not a readable flowlab progress file") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q, want it to name the file and say it is not readable", name, err)
		}
	}
	if _, err := progress.Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a folder as the file: error %v, want one naming it", err)
	}
}

// Many writers and readers at once, as many browsers are: no change is lost.
func TestConcurrentRecordsLoseNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "progress.db"))
	defer s.Close()
	learners := []string{progress.NewLearner(), progress.NewLearner()}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				step := g*10 + i
				if err := s.Record(learners[g%2], "work-queue-retries", func(w *progress.Walk) error { return w.MarkDone(step) }); err != nil {
					t.Error(err)
				}
				if _, err := s.Learner(learners[(g+1)%2]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i, l := range learners {
		p, err := s.Learner(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Walks) != 1 || len(p.Walks[0].Done) != 40 {
			t.Fatalf("learner %d: %+v, want 40 steps done", i, p.Walks)
		}
		for _, step := range p.Walks[0].Done {
			if (step/10)%2 != i {
				t.Errorf("learner %d has step %d, another's", i, step)
			}
		}
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "progress.db"))
	defer s.Close()
	me := progress.NewLearner()
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkAnswered(1, "lost") })
	before, _ := s.Learner(me)

	forged := []string{"", "x", me[:21], me + "A", strings.Repeat("A", 21) + "B", // B: bits past the 128th
		strings.Repeat("+", 22), strings.Repeat("/", 22), me[:20] + "==", me[:21] + "\n", "../../../../etc/passwd", strings.Repeat("A", 4096)}
	for _, id := range forged {
		if progress.ValidLearner(id) {
			t.Errorf("%q passes as a learner id", id)
		}
		if _, err := s.Learner(id); flow.KindOf(err) != flow.Invalid {
			t.Errorf("Learner(%q): %v, want it refused as invalid", id, err)
		}
		if err := s.Record(id, "auto-ack", func(w *progress.Walk) error { return w.MarkDone(0) }); flow.KindOf(err) != flow.Invalid {
			t.Errorf("Record(%q): %v, want it refused as invalid", id, err)
		}
	}
	for _, walk := range []string{"", "Auto-ack", "auto_ack", "auto-ack-", "../x", strings.Repeat("a", 65)} {
		if err := s.Record(me, walk, func(w *progress.Walk) error { return w.MarkDone(0) }); flow.KindOf(err) != flow.Invalid {
			t.Errorf("walk %q: %v, want it refused as invalid", walk, err)
		}
	}
	for name, update := range map[string]func(*progress.Walk) error{
		"step -1":         func(w *progress.Walk) error { return w.MarkDone(-1) },
		"step too far":    func(w *progress.Walk) error { return w.MarkPassed(progress.MaxSteps, false) },
		"empty answer":    func(w *progress.Walk) error { return w.MarkAnswered(2, "") },
		"long answer":     func(w *progress.Walk) error { return w.MarkAnswered(2, strings.Repeat("x", 65)) },
		"judge unasked":   func(w *progress.Walk) error { return w.MarkJudged(4, true) },
		"done then error": func(w *progress.Walk) error { w.MarkDone(7); return w.MarkDone(-1) },
	} {
		if err := s.Record(me, "auto-ack", update); flow.KindOf(err) != flow.Invalid {
			t.Errorf("%s: %v, want it refused as invalid", name, err)
		}
	}
	// A walk never recorded before, refused: it must not appear either.
	if err := s.Record(me, "replay", func(w *progress.Walk) error { return w.MarkDone(-1) }); err == nil {
		t.Error("a bad first record of a walk was taken")
	}
	after, _ := s.Learner(me)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("refused input changed the progress:\n%+v\nwant\n%+v", after, before)
	}
	// The same answer again is no change; another (the walk started again)
	// replaces it, to be judged anew.
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkJudged(1, true) })
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkAnswered(1, "lost") })
	if p, _ := s.Learner(me); p.Walks[0].Predictions[0].Correct == nil {
		t.Errorf("the same answer again cleared its judgement: %+v", p.Walks[0].Predictions)
	}
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkAnswered(1, "kept") })
	if p, _ := s.Learner(me); len(p.Walks[0].Predictions) != 1 || p.Walks[0].Predictions[0].Answer != "kept" || p.Walks[0].Predictions[0].Correct != nil {
		t.Errorf("answered again: %+v, want kept, not yet judged", p.Walks[0].Predictions)
	}
}

// "Show me" marks a check assisted until the learner passes it alone; a
// pass alone is never made assisted by a later "Show me".
func TestAssistedUntilPassedAlone(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "progress.db"))
	defer s.Close()
	me := progress.NewLearner()
	assisted := func() []int {
		p, _ := s.Learner(me)
		return p.Walks[0].Assisted
	}
	pass := func(step int, shown bool) {
		mustRecord(t, s, me, "poison", func(w *progress.Walk) error { return w.MarkPassed(step, shown) })
	}
	pass(2, true)
	pass(5, false)
	if got := assisted(); !reflect.DeepEqual(got, []int{2}) {
		t.Fatalf("assisted %v, want [2]", got)
	}
	pass(5, true)
	pass(2, false)
	if got := assisted(); len(got) != 0 {
		t.Errorf("assisted %v after both were passed alone, want none", got)
	}
}

func TestLearnerIDsAreRandom128Bits(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := progress.NewLearner()
		if !progress.ValidLearner(id) || len(id) != 22 || seen[id] {
			t.Fatalf("id %q: valid %v, seen %v", id, progress.ValidLearner(id), seen[id])
		}
		seen[id] = true
	}
	// The JSON a learner downloads names the fields plainly.
	s := mustOpen(t, filepath.Join(t.TempDir(), "progress.db"))
	defer s.Close()
	me := progress.NewLearner()
	mustRecord(t, s, me, "auto-ack", func(w *progress.Walk) error { return w.MarkAnswered(0, "lost") })
	p, _ := s.Learner(me)
	b, _ := json.Marshal(p)
	for _, want := range []string{`"learner":"` + me + `"`, `"walk":"auto-ack"`, `"started":`, `"done":[0]`, `"passed":[]`, `"assisted":[]`, `"predictions":[{"step":0,"answer":"lost"}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "finished") {
		t.Errorf("%s: an unfinished walk has a finished time", b)
	}
}

// Bytes damaged anywhere past the meta pages never crash Open: the file is
// refused with the same sentence, or opens when only unused pages were hit.
func TestDamagedPagesNeverCrashOpen(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s := mustOpen(t, good)
	for range 300 {
		mustRecord(t, s, progress.NewLearner(), "auto-ack", func(w *progress.Walk) error { return w.MarkDone(1) })
	}
	s.Close()
	whole, _ := os.ReadFile(good)
	refused := 0
	for i := range 30 {
		b := slices.Clone(whole)
		r := mrand.New(mrand.NewPCG(uint64(i), 1))
		off := 8192 + r.IntN(len(b)-8192-64)
		for j := range 64 {
			b[off+j] = byte(r.IntN(256))
		}
		path := filepath.Join(dir, "damaged.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := progress.Open(path)
		if err == nil {
			s.Close()
			continue
		}
		refused++
		if !strings.Contains(err.Error(), "is not a readable flowlab progress file") {
			t.Errorf("bytes %d…%d damaged: error %q, want it to say the file is not readable", off, off+64, err)
		}
	}
	if refused == 0 {
		t.Error("no damaged file was refused")
	}
}
