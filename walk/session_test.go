package walk_test

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/walk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is an in-memory event-driven lab: inventory can be stopped, and what
// order-service sends meanwhile is lost for inventory. It scripts the
// scenario so the engine can be tested; the shipped walks run against the
// real scenarios in the server's tests.
type lab struct {
	mu       sync.Mutex
	stopped  bool
	counters map[string]int64
	events   map[flow.Kind]int64
	cmds     []walk.Command
	stats    int           // calls of Stats
	hold     chan struct{} // when set, Command waits for it to close
}

func newLab() *lab {
	l := &lab{}
	l.zero()
	return l
}

func (l *lab) zero() {
	l.stopped = false
	l.counters = map[string]int64{"published": 0, "inventory.lost": 0, "inventory.acked": 0}
	l.events = map[flow.Kind]int64{}
}

func (l *lab) Stats() flow.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats++
	st := flow.Stats{Nodes: map[string]flow.NodeState{
		"inventory": {State: map[bool]string{false: "up", true: "stopped"}[l.stopped],
			Facts: []flow.Fact{flow.Count("lost", l.counters["inventory.lost"], "")}},
		"queue-inventory": {State: "ok", Facts: []flow.Fact{flow.Flag("exists", !l.stopped, "")}},
	}}
	for _, name := range []string{"published", "inventory.lost", "inventory.acked"} {
		st.Counters = append(st.Counters, flow.Counter{Name: name, Value: l.counters[name]})
	}
	return st
}

func (l *lab) Knobs() []flow.Knob { return eventKnobs() }

func (l *lab) EventCounts() map[flow.Kind]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[flow.Kind]int64{}
	for k, n := range l.events {
		out[k] = n
	}
	return out
}

func (l *lab) Command(ctx context.Context, c walk.Command) error {
	l.mu.Lock()
	hold := l.hold
	l.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, c)
	switch {
	case c.Reset:
		l.zero()
	case c.Set == "inventory.stop":
		l.stopped = true
	case c.Set == "inventory.restart":
		l.stopped = false
	case c.Set == "order-service.send-100":
		l.send(100)
	}
	return nil
}

// send publishes n orders; inventory loses them while stopped.
func (l *lab) send(n int64) {
	l.counters["published"] += n
	l.events[flow.KindPublish] += n
	if l.stopped {
		l.counters["inventory.lost"] += n
	} else {
		l.counters["inventory.acked"] += n
	}
}

// traffic is what the lab does by itself, with no learner: orders sent to a
// running inventory.
func (l *lab) traffic(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.send(n)
}

func (l *lab) sent() []walk.Command {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]walk.Command(nil), l.cmds...)
}

func (l *lab) statsCalls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

const lostWalk = `---
title: Lost while away
pattern: event-driven
minutes: 2
learn: [what an exclusive queue loses]
setup:
  - preset: article
---
## Read: intro
` + "```step" + `
nodes: [inventory]
` + "```" + `
Orders so far: {{ counters["published"] }}.

## Predict: lost or kept?
` + "```step" + `
choices:
  lost: Lost
  kept: Kept
outcome: 'delta["inventory.lost"] > 0 ? "lost" : "kept"'
measured: '{{ delta["inventory.lost"] }} lost of {{ delta["published"] }}'
` + "```" + `
What happens?

## Act: stop and send
` + "```step" + `
do:
  - set: inventory.stop
  - set: order-service.send-100
  - wait: 10ms
  - set: inventory.restart
` + "```" + `
Press it.

## Check: lost
` + "```step" + `
check: delta["inventory.lost"] >= 50 && events["publish"] >= 100
within: 30s
hint: Look at the queue.
show:
  - set: inventory.stop
  - set: order-service.send-100
  - set: inventory.restart
` + "```" + `
Wait.

## Explain: why
You lost {{ delta["inventory.lost"] }} in {{ seconds >= 0 ? "time" : "no time" }} <b>now</b>.
`

func mustLoad(t *testing.T, src string) *walk.Walk {
	t.Helper()
	ws, err := walk.Load(fstest.MapFS{"w.md": {Data: []byte(src)}}, catalogs(t))
	if err != nil {
		t.Fatal(err)
	}
	return ws[0]
}

func startSession(t *testing.T, w *walk.Walk, l walk.Lab) *walk.Session {
	t.Helper()
	s, err := walk.Start(context.Background(), w, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, s *walk.Session, op string, step int, choice string) walk.SessionState {
	t.Helper()
	st, err := s.Do(context.Background(), walk.Action{Op: op, Step: step, Choice: choice})
	if err != nil {
		t.Fatalf("%s %d %q: %v", op, step, choice, err)
	}
	return st
}

// waitFor polls the session's state until ok holds, for at most 5 s.
func waitFor(t *testing.T, s *walk.Session, what string, ok func(walk.SessionState) bool) walk.SessionState {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.State()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s; state %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartResetsAndRunsSetup(t *testing.T) {
	l := newLab()
	l.traffic(7) // left by an earlier learner: the reset clears it
	s := startSession(t, mustLoad(t, lostWalk), l)
	want := []walk.Command{{Reset: true}, {Preset: "article"}}
	if got := l.sent(); !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %+v, want %+v", got, want)
	}
	st := s.State()
	if st.Walk != "w" || st.Pattern != "event-driven" || st.Step != 0 || !st.Steps[0].Done {
		t.Errorf("state = %+v", st)
	}
	if h := st.Steps[0].HTML; !strings.Contains(h, "Orders so far: 0.") {
		t.Errorf("read html = %s", h)
	}
	if st.Steps[1].HTML != "" {
		t.Errorf("a step not reached has html: %s", st.Steps[1].HTML)
	}
}

func TestWalkThroughPredictActCheckExplain(t *testing.T) {
	l := newLab()
	s := startSession(t, mustLoad(t, lostWalk), l)
	do(t, s, "go", 1, "")
	st := do(t, s, "answer", 1, "lost")
	if p := st.Steps[1]; p.Answer != "lost" || p.Predicted != "Lost" || p.Correct != nil || p.Measured != "" {
		t.Errorf("predict after answering = %+v", p)
	}
	do(t, s, "go", 2, "")
	st = do(t, s, "act", 2, "")
	if !st.Running {
		t.Errorf("act's reply does not say running")
	}
	waitFor(t, s, "the act's commands", func(st walk.SessionState) bool { return !st.Running && st.Steps[2].Done })
	do(t, s, "go", 3, "")
	st = waitFor(t, s, "the check to pass", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
	if c := st.Steps[3]; !c.Done || c.Assisted {
		t.Errorf("check = %+v", c)
	}
	if p := st.Steps[1]; p.Correct == nil || !*p.Correct || p.Measured != "100 lost of 100" {
		t.Errorf("predict judged = %+v", p)
	}
	l.traffic(5) // after the pass: the explanation quotes the values at the pass
	st = do(t, s, "go", 4, "")
	h := st.Steps[4].HTML
	if !strings.Contains(h, "You lost 100 in time") || !strings.Contains(h, "&lt;b&gt;now&lt;/b&gt;") {
		t.Errorf("explain html = %s", h)
	}
}

// TestCheckCannotPassByDoingNothing: the lab's own traffic never passes a
// check over delta and events; the learner's action (here Show me) does.
func TestCheckCannotPassByDoingNothing(t *testing.T) {
	src := strings.Replace(lostWalk, "do:\n  - set: inventory.stop\n  - set: order-service.send-100\n  - wait: 10ms\n  - set: inventory.restart\n", "nodes: [inventory]\n", 1)
	l := newLab()
	s := startSession(t, mustLoad(t, src), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "kept")
	st := do(t, s, "go", 2, "")
	if a := st.Steps[2]; !a.Done || a.Button {
		t.Errorf("a do-it-yourself act = %+v, want done at once, with no button", a)
	}
	l.traffic(300)
	do(t, s, "go", 3, "")
	for n := l.statsCalls() + 4; l.statsCalls() < n; { // four polls at least
		l.traffic(10)
		time.Sleep(50 * time.Millisecond)
	}
	if c := s.State().Steps[3]; c.Status != "waiting" || c.Done {
		t.Fatalf("check after the lab's own traffic = %+v, want waiting", c)
	}
	st = do(t, s, "show", 3, "")
	if !st.Steps[3].Assisted {
		t.Errorf("show did not mark the check assisted")
	}
	st = waitFor(t, s, "the check to pass", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
	if p := st.Steps[1]; p.Correct == nil || *p.Correct {
		t.Errorf("predicted kept, measured lost: %+v", p)
	}
}

// TestBaselineAtTheAct: lost orders before the act do not count.
func TestBaselineAtTheAct(t *testing.T) {
	src := strings.Replace(lostWalk, "delta[\"inventory.lost\"] >= 50 && events[\"publish\"] >= 100", "delta[\"inventory.lost\"] >= 150", 1)
	l := newLab()
	s := startSession(t, mustLoad(t, src), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	l.mu.Lock()
	l.stopped = true
	l.send(100) // lost before the act's baseline
	l.stopped = false
	l.mu.Unlock()
	do(t, s, "go", 2, "")
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act", func(st walk.SessionState) bool { return st.Steps[2].Done })
	do(t, s, "go", 3, "")
	for n := l.statsCalls() + 3; l.statsCalls() < n; {
		time.Sleep(50 * time.Millisecond)
	}
	if c := s.State().Steps[3]; c.Status != "waiting" {
		t.Fatalf("check counted losses from before its act: %+v", c)
	}
}

// TestBaselineAtThePress: what the lab does while the learner reads an act
// before pressing its button is not the act's doing, and no check counts it.
func TestBaselineAtThePress(t *testing.T) {
	src := strings.Replace(lostWalk, "delta[\"inventory.lost\"] >= 50 && events[\"publish\"] >= 100", "delta[\"inventory.lost\"] >= 150", 1)
	l := newLab()
	s := startSession(t, mustLoad(t, src), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	l.mu.Lock()
	l.stopped = true
	l.send(100) // lost while the learner reads the act
	l.stopped = false
	l.mu.Unlock()
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act", func(st walk.SessionState) bool { return st.Steps[2].Done })
	do(t, s, "go", 3, "")
	// A check that passed stops polling: wait for three polls or a pass.
	for n, end := l.statsCalls()+3, time.Now().Add(5*time.Second); l.statsCalls() < n && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if c := s.State().Steps[3]; c.Status != "waiting" {
		t.Fatalf("check counted losses from before its act's button was pressed: %+v", c)
	}
}

func TestNotYetThenPassesLater(t *testing.T) {
	src := strings.Replace(lostWalk, "within: 30s", "within: 300ms", 1)
	src = strings.Replace(src, "do:\n  - set: inventory.stop\n  - set: order-service.send-100\n  - wait: 10ms\n  - set: inventory.restart\n", "nodes: [inventory]\n", 1)
	l := newLab()
	s := startSession(t, mustLoad(t, src), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	st := do(t, s, "go", 3, "")
	if c := st.Steps[3]; c.Status != "waiting" || c.LeftMS <= 0 || c.Hint != "" {
		t.Errorf("check on entry = %+v", c)
	}
	if _, err := s.Do(context.Background(), walk.Action{Op: "go", Step: 4}); flow.KindOf(err) != flow.Invalid {
		t.Errorf("go past a waiting check = %v, want Invalid", err)
	}
	st = waitFor(t, s, "not yet", func(st walk.SessionState) bool { return st.Steps[3].Status == "not-yet" })
	if st.Steps[3].Hint != "Look at the queue." {
		t.Errorf("not-yet hint = %q", st.Steps[3].Hint)
	}
	l.mu.Lock()
	l.stopped = true
	l.send(100)
	l.mu.Unlock()
	waitFor(t, s, "the check to pass after its window", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
}

func TestSkipAfterTheWindowKeepsNotYet(t *testing.T) {
	src := strings.Replace(lostWalk, "within: 30s", "within: 200ms", 1)
	src = strings.Replace(src, "do:\n  - set: inventory.stop\n  - set: order-service.send-100\n  - wait: 10ms\n  - set: inventory.restart\n", "nodes: [inventory]\n", 1)
	s := startSession(t, mustLoad(t, src), newLab())
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	do(t, s, "go", 3, "")
	waitFor(t, s, "not yet", func(st walk.SessionState) bool { return st.Steps[3].Status == "not-yet" })
	st := do(t, s, "go", 4, "")
	if st.Step != 4 || st.Steps[3].Status != "not-yet" || st.Steps[3].Done || st.Steps[1].Correct != nil {
		t.Errorf("after skipping = %+v", st)
	}
	if !strings.Contains(st.Steps[4].HTML, "You lost 0") {
		t.Errorf("explain with no check passed reads the lab now: %s", st.Steps[4].HTML)
	}
}

func TestBadActionsChangeNothing(t *testing.T) {
	s := startSession(t, mustLoad(t, lostWalk), newLab())
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	for _, a := range []walk.Action{
		{Op: "jump", Step: 1},
		{Op: "go", Step: -1},
		{Op: "go", Step: 5},
		{Op: "go", Step: 3},                     // beyond furthest + 1
		{Op: "answer", Step: 1, Choice: "kept"}, // twice
		{Op: "answer", Step: 0, Choice: "lost"}, // not the current step
		{Op: "act", Step: 1},                    // not an act
		{Op: "show", Step: 1},                   // nothing to show
	} {
		before := s.State()
		if _, err := s.Do(context.Background(), a); flow.KindOf(err) != flow.Invalid {
			t.Errorf("%+v = %v, want Invalid", a, err)
		}
		if after := s.State(); !reflect.DeepEqual(before, after) {
			t.Errorf("%+v changed the state:\n%+v\n%+v", a, before, after)
		}
	}
	// A choice not offered, on a fresh predict.
	s2 := startSession(t, mustLoad(t, lostWalk), newLab())
	do(t, s2, "go", 1, "")
	if _, err := s2.Do(context.Background(), walk.Action{Op: "answer", Step: 1, Choice: "maybe"}); flow.KindOf(err) != flow.Invalid {
		t.Errorf("answer maybe = %v", err)
	}
	if _, err := s2.Do(context.Background(), walk.Action{Op: "go", Step: 2}); flow.KindOf(err) != flow.Invalid ||
		!strings.Contains(err.Error(), "answer the prediction") {
		t.Errorf("go past an unanswered predict = %v", err)
	}
	if st := s2.State(); st.Steps[1].Answer != "" || st.Step != 1 {
		t.Errorf("state after refusals = %+v", st)
	}
}

func TestSecondActionWhileRunningIsRefused(t *testing.T) {
	l := newLab()
	s := startSession(t, mustLoad(t, lostWalk), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	hold := make(chan struct{})
	l.mu.Lock()
	l.hold = hold
	l.mu.Unlock()
	if st := do(t, s, "act", 2, ""); !st.Running {
		t.Fatal("act does not say running")
	}
	for _, a := range []walk.Action{{Op: "go", Step: 1}, {Op: "act", Step: 2}, {Op: "reset-step", Step: 2}} {
		_, err := s.Do(context.Background(), a)
		if flow.KindOf(err) != flow.Invalid || !strings.Contains(err.Error(), "still carrying out") {
			t.Errorf("%+v while running = %v", a, err)
		}
	}
	close(hold)
	waitFor(t, s, "the commands", func(st walk.SessionState) bool { return !st.Running && st.Steps[2].Done })
}

func TestResetStepGoesBackToTheAct(t *testing.T) {
	l := newLab()
	s := startSession(t, mustLoad(t, lostWalk), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act", func(st walk.SessionState) bool { return st.Steps[2].Done })
	do(t, s, "go", 3, "")
	waitFor(t, s, "the check", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
	n := len(l.sent())
	do(t, s, "reset-step", 3, "")
	st := waitFor(t, s, "the reset", func(st walk.SessionState) bool { return !st.Running })
	if got := l.sent()[n:]; !reflect.DeepEqual(got, []walk.Command{{Reset: true}, {Preset: "article"}}) {
		t.Errorf("reset-step sent %+v", got)
	}
	if st.Step != 2 || st.Furthest != 2 || st.Steps[2].Done || st.Steps[3].Status != "" || st.Steps[3].Done {
		t.Errorf("after reset-step = %+v", st)
	}
	if p := st.Steps[1]; p.Answer != "lost" || p.Correct != nil || p.Measured != "" {
		t.Errorf("the prediction after reset-step = %+v, want its answer kept and its judgement gone", p)
	}
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act again", func(st walk.SessionState) bool { return st.Steps[2].Done })
	do(t, s, "go", 3, "")
	st = waitFor(t, s, "the check again", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
	if p := st.Steps[1]; p.Measured != "100 lost of 100" {
		t.Errorf("measured after the reset = %q", p.Measured)
	}
}

// TestPollsOnlyOnACheck: off a check the lab is not read.
func TestPollsOnlyOnACheck(t *testing.T) {
	l := newLab()
	startSession(t, mustLoad(t, lostWalk), l)
	n := l.statsCalls()
	time.Sleep(4 * 250 * time.Millisecond)
	if m := l.statsCalls(); m != n {
		t.Errorf("Stats called %d times on a read step", m-n)
	}
}

func TestCloseCancelsRunningCommands(t *testing.T) {
	l := newLab()
	s, err := walk.Start(context.Background(), mustLoad(t, lostWalk), l)
	if err != nil {
		t.Fatal(err)
	}
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	l.mu.Lock()
	l.hold = make(chan struct{}) // never closed: Close must end the command
	l.mu.Unlock()
	do(t, s, "act", 2, "")
	s.Close() // goleak in TestMain fails if a goroutine is left
	if _, err := s.Do(context.Background(), walk.Action{Op: "go", Step: 1}); flow.KindOf(err) != flow.NotFound {
		t.Errorf("Do after Close = %v, want NotFound", err)
	}
}

func TestStartFailsWhenTheResetFails(t *testing.T) {
	w := mustLoad(t, lostWalk)
	if _, err := walk.Start(context.Background(), w, failingLab{newLab()}); err == nil || !strings.Contains(err.Error(), "broker away") {
		t.Fatalf("Start = %v", err)
	}
}

type failingLab struct{ *lab }

func (failingLab) Command(context.Context, walk.Command) error {
	return flow.Errorf(flow.Unavailable, "broker away")
}

// refusingLab refuses the first stop, as a scenario refuses a knob that
// does not apply now.
type refusingLab struct {
	*lab
	refused bool
}

func (r *refusingLab) Command(ctx context.Context, c walk.Command) error {
	if c.Set == "inventory.stop" && !r.refused {
		r.refused = true
		return flow.Errorf(flow.Invalid, "inventory is already stopped")
	}
	return r.lab.Command(ctx, c)
}

func TestAFailedActSaysWhyAndMayBePressedAgain(t *testing.T) {
	l := &refusingLab{lab: newLab()}
	s := startSession(t, mustLoad(t, lostWalk), l)
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	do(t, s, "act", 2, "")
	st := waitFor(t, s, "the act to fail", func(st walk.SessionState) bool { return !st.Running })
	if a := st.Steps[2]; a.Done || a.Error != "inventory is already stopped" {
		t.Fatalf("failed act = %+v", a)
	}
	if _, err := s.Do(context.Background(), walk.Action{Op: "go", Step: 3}); flow.KindOf(err) != flow.Invalid {
		t.Errorf("go past a failed act = %v", err)
	}
	do(t, s, "act", 2, "")
	st = waitFor(t, s, "the act", func(st walk.SessionState) bool { return !st.Running })
	if a := st.Steps[2]; !a.Done || a.Error != "" {
		t.Errorf("act pressed again = %+v", a)
	}
}

// TestMeasuredDefaultsToTheOutcome: with no measured template, the page
// shows the text of the choice that happened.
func TestMeasuredDefaultsToTheOutcome(t *testing.T) {
	src := strings.Replace(lostWalk, "measured: '{{ delta[\"inventory.lost\"] }} lost of {{ delta[\"published\"] }}'\n", "", 1)
	s := startSession(t, mustLoad(t, src), newLab())
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "kept")
	do(t, s, "go", 2, "")
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act", func(st walk.SessionState) bool { return st.Steps[2].Done })
	do(t, s, "go", 3, "")
	st := waitFor(t, s, "the check", func(st walk.SessionState) bool { return st.Steps[3].Status == "passed" })
	if p := st.Steps[1]; p.Outcome != "lost" || p.Measured != "Lost" || p.Correct == nil || *p.Correct {
		t.Errorf("predict = %+v, want outcome lost, measured Lost, not correct", p)
	}
}

// TestNoCheckPassesWhileResetting: while "Reset step" runs, the lab is half
// way between two states; a check judged then would freeze nonsense.
func TestNoCheckPassesWhileResetting(t *testing.T) {
	src := head + "## Read: r\nHi.\n\n## Check: stopped\n```step\ncheck: state[\"inventory\"] == \"stopped\"\nwithin: 30s\nhint: h\n```\n"
	l := newLab()
	s := startSession(t, mustLoad(t, src), l)
	do(t, s, "go", 1, "")
	hold := make(chan struct{})
	l.mu.Lock()
	l.hold, l.stopped = hold, true
	l.mu.Unlock()
	do(t, s, "reset-step", 1, "")
	time.Sleep(4 * 250 * time.Millisecond) // four polls
	if c := s.State().Steps[1]; c.Status == "passed" {
		t.Errorf("the check passed while the lab was being reset: %+v", c)
	}
	close(hold)
	st := waitFor(t, s, "the reset", func(st walk.SessionState) bool { return !st.Running })
	if st.Step != 0 || st.Steps[1].Status != "" {
		t.Errorf("after reset-step with no act: %+v", st)
	}
}

func TestHoldsBeforeAndAfterTheAction(t *testing.T) {
	l := newLab()
	s := startSession(t, mustLoad(t, lostWalk), l)
	if _, err := s.Holds(0); flow.KindOf(err) != flow.Invalid {
		t.Errorf("Holds(a read step) = %v, want Invalid", err)
	}
	do(t, s, "go", 1, "")
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
	l.traffic(500)
	if ok, err := s.Holds(3); ok || err != nil {
		t.Errorf("Holds before the act = %v, %v; want false", ok, err)
	}
	do(t, s, "act", 2, "")
	waitFor(t, s, "the act", func(st walk.SessionState) bool { return st.Steps[2].Done })
	if ok, err := s.Holds(3); !ok || err != nil {
		t.Errorf("Holds after the act = %v, %v; want true", ok, err)
	}
	if st := s.State(); st.Steps[3].Status != "" || st.Steps[1].Correct != nil {
		t.Errorf("Holds changed the session: %+v", st)
	}
}

// The instructor's Move goes to any step: steps jumped over are seen, an
// act jumped over is not run and a check not passed; since is when the step
// was entered.
func TestMoveJumpsAndMarksSeen(t *testing.T) {
	l := newLab()
	s := startSession(t, mustLoad(t, lostWalk), l)
	st := s.State()
	if st.Since == 0 || time.Since(time.UnixMilli(st.Since)) > 5*time.Second {
		t.Fatalf("since = %d", st.Since)
	}
	sent := len(l.sent())
	time.Sleep(5 * time.Millisecond)
	if err := s.Move(4); err != nil {
		t.Fatal(err)
	}
	st = s.State()
	if st.Step != 4 || st.Furthest != 4 || st.Since <= 0 {
		t.Fatalf("after Move(4): %+v", st)
	}
	if st.Steps[2].Done || st.Steps[3].Status == "passed" || st.Steps[3].Done || len(l.sent()) != sent {
		t.Errorf("a jump ran the act or passed the check: %+v, sent %v", st.Steps, l.sent())
	}
	if st.Steps[1].HTML == "" || st.Steps[2].HTML == "" || !st.Steps[4].Done {
		t.Errorf("steps jumped over are not seen: %+v", st.Steps)
	}
	// Back too, and out of range refused.
	if err := s.Move(1); err != nil || s.State().Step != 1 {
		t.Fatalf("Move(1): %v, step %d", err, s.State().Step)
	}
	for _, bad := range []int{-1, 5} {
		if err := s.Move(bad); flow.KindOf(err) != flow.Invalid {
			t.Errorf("Move(%d): %v, want invalid", bad, err)
		}
	}
}

// A lock keeps the learner from going past it; -1 removes it; the
// instructor's Move is not held by it.
func TestLockHoldsTheLearner(t *testing.T) {
	s := startSession(t, mustLoad(t, lostWalk), newLab())
	s.Lock(0)
	_, err := s.Do(context.Background(), walk.Action{Op: "go", Step: 1})
	if flow.KindOf(err) != flow.Invalid || !strings.Contains(flow.MessageOf(err), "your instructor has not opened step 2 yet") {
		t.Fatalf("go past the lock: %v", err)
	}
	if s.State().Step != 0 {
		t.Fatal("a refused go moved")
	}
	if err := s.Move(1); err != nil {
		t.Fatalf("Move past the lock: %v", err)
	}
	s.Lock(-1)
	do(t, s, "answer", 1, "lost")
	do(t, s, "go", 2, "")
}
