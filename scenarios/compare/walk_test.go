package compare_test

import (
	"context"
	"io/fs"
	"regexp"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"flowlab/flow"
	"flowlab/scenarios/compare"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/walk"
	"flowlab/walks"
)

// walkLab is the comparison as a walkthrough drives it, as the server's lab
// does: knobs set as the page sets them, and a reset that stops the
// scenario, deletes what it made and opens it afresh.
type walkLab struct {
	t       *testing.T
	brokers []string
	lab     *flow.Lab

	mu     sync.Mutex
	s      *compare.Scenario
	events *kindCount
	stop   context.CancelFunc
	done   chan error
}

// kindCount counts events by kind.
type kindCount struct {
	mu sync.Mutex
	n  map[flow.Kind]int64
}

func (k *kindCount) Emit(e flow.Event) {
	k.mu.Lock()
	k.n[e.Kind]++
	k.mu.Unlock()
}

func (w *walkLab) cur() *compare.Scenario {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s
}

func (w *walkLab) Stats() flow.Stats  { return w.cur().Stats() }
func (w *walkLab) Knobs() []flow.Knob { return w.cur().Knobs() }
func (w *walkLab) EventCounts() map[flow.Kind]int64 {
	w.mu.Lock()
	k := w.events
	w.mu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[flow.Kind]int64{}
	for kind, n := range k.n {
		out[kind] = n
	}
	return out
}

func (w *walkLab) Command(ctx context.Context, c walk.Command) error {
	switch {
	case c.Reset:
		return w.reset(ctx)
	case c.Preset != "":
		return flow.ApplyPreset(w.cur(), c.Preset)
	default:
		return flow.SetKnob(w.cur(), c.Set, c.Value)
	}
}

// reset ends the running scenario, tears it down and starts a new one.
func (w *walkLab) reset(ctx context.Context) error {
	w.end(ctx)
	events := &kindCount{n: map[flow.Kind]int64{}}
	s, err := compare.Open(compare.Config{AMQPURL: rabbittest.URL(), Brokers: w.brokers, Lab: w.lab,
		Emit: flow.NewEmitter(w.lab, compare.Name, events)})
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	w.mu.Lock()
	w.s, w.events, w.stop, w.done = s, events, stop, done
	w.mu.Unlock()
	return nil
}

// end stops the running scenario, if any, and deletes what it made.
func (w *walkLab) end(ctx context.Context) {
	w.mu.Lock()
	s, stop, done := w.s, w.stop, w.done
	w.mu.Unlock()
	if s == nil {
		return
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			w.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		w.t.Error("Run did not return within 15 s of its context ending")
	}
	if err := s.Teardown(ctx); err != nil {
		w.t.Errorf("Teardown: %v", err)
	}
}

// loadWalk loads the walkthrough against the comparison's own knobs and
// presets and the names docs/FACTS.md and docs/COUNTERS.md list.
func loadWalk(t *testing.T, s *compare.Scenario) *walk.Walk {
	t.Helper()
	const file = "which-pattern-survives.md"
	src, err := fs.ReadFile(walks.Files, file)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := walk.NewCatalog(compare.Name, s.Knobs(), s.Presets())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := walk.Load(fstest.MapFS{file: {Data: src}}, map[string]*walk.Catalog{compare.Name: cat})
	if err != nil {
		t.Fatal(err)
	}
	return ws[0]
}

// The walkthrough is played as a learner would against the real brokers:
// each prediction answered, each act's button pressed. Before each act the
// check after it does not hold, even after a pause; after it, it passes;
// every prediction is judged, and the explanations quote numbers.
func TestWhichPatternSurvivesIsSolvable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	wl := &walkLab{t: t, brokers: c.ListenAddrs(), lab: rabbittest.MustLab(t)}
	ctx := context.Background()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		wl.end(cctx)
	})
	if err := wl.reset(ctx); err != nil {
		t.Fatal(err)
	}
	w := loadWalk(t, wl.cur())
	s, err := walk.Start(ctx, w, wl)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	do := func(op string, i int, choice string) {
		t.Helper()
		if _, err := s.Do(ctx, walk.Action{Op: op, Step: i, Choice: choice}); err != nil {
			t.Fatalf("%s step %d %q: %v", op, i, w.Steps[i].Title, err)
		}
	}
	waitState := func(what string, limit time.Duration, ok func(walk.SessionState) bool) walk.SessionState {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			st := s.State()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; the lab:\n%s", what, limit, rabbittest.Describe(wl.Stats()))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	number := regexp.MustCompile(`\d`)
	for i, step := range w.Steps {
		if i > 0 {
			do("go", i, "")
		}
		switch step.Kind {
		case walk.KindPredict:
			do("answer", i, s.State().Steps[i].Choices[0].ID)
		case walk.KindAct:
			check := i + 1
			for w.Steps[check].Kind != walk.KindCheck {
				check++
			}
			for _, pause := range []time.Duration{0, time.Second} {
				time.Sleep(pause)
				if held, err := s.Holds(check); err != nil || held {
					t.Fatalf("check %q holds (%v, %v) before its act: it can pass by doing nothing", w.Steps[check].Title, held, err)
				}
			}
			do("act", i, "")
			waitState("act "+step.Title, time.Minute, func(st walk.SessionState) bool { return !st.Running })
			if e := s.State().Steps[i].Error; e != "" {
				t.Fatalf("act %q failed: %s", step.Title, e)
			}
		case walk.KindCheck:
			waitState("check "+step.Title, 60*time.Second, func(st walk.SessionState) bool { return st.Steps[i].Status == "passed" })
		case walk.KindExplain:
			if h := s.State().Steps[i].HTML; !number.MatchString(h) {
				t.Errorf("explain %q quotes no number: %s", step.Title, h)
			}
		}
	}
	st := s.State()
	for i, step := range st.Steps {
		if step.Kind != walk.KindPredict {
			continue
		}
		if step.Outcome == "" || step.Measured == "" || step.Correct == nil {
			t.Errorf("prediction %d %q was not judged: %+v", i, step.Title, step)
		}
		t.Logf("%s: predicted %q, happened %q, measured %q", step.Title, step.Answer, step.Outcome, step.Measured)
	}
	// What the walkthrough teaches is what happened: HTTP failed, the
	// brokers held with durable queues, the article's exclusive queue lost.
	want := map[string]string{"Predict: HTTP, while inventory is down": "fail", "Predict: RabbitMQ, while inventory is down": "held",
		"Predict: Kafka, while inventory is down": "held", "Predict: the article's own queues": "lost"}
	for _, step := range st.Steps {
		if o, ok := want["Predict: "+step.Title]; ok && step.Outcome != o {
			t.Errorf("%q: outcome %q, want %q", step.Title, step.Outcome, o)
		}
	}
}
