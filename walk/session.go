package walk

import (
	"context"
	"slices"
	"sync"
	"time"

	"flowlab/flow"
)

// Action is what a learner asks of a session.
//
// Op is one of:
//   - "answer": answer the predict step Step with Choice (once: it locks);
//   - "act": run the commands of the act step Step (its button);
//   - "show": send the "Show me" commands of the check or do-it-yourself act
//     step Step, which marks it assisted;
//   - "reset-step": reset the scenario, run the walk's setup, and go back to
//     the nearest act at or before the current step;
//   - "go": move to step Step.
type Action struct {
	Op     string `json:"op"`
	Step   int    `json:"step"`
	Choice string `json:"choice"`
}

// SessionState is what the page shows of a session.
type SessionState struct {
	Walk    string `json:"walk"`
	Title   string `json:"title"`
	Pattern string `json:"pattern"`
	// Lab is the lab's id; the engine does not know it, the server fills it.
	Lab      string      `json:"lab"`
	Step     int         `json:"step"`     // the current step
	Since    int64       `json:"since"`    // unix ms when the current step was entered
	Furthest int         `json:"furthest"` // the furthest step reached
	Running  bool        `json:"running"`  // commands are being sent
	Steps    []StepState `json:"steps"`
}

// StepState is one step as the page shows it.
type StepState struct {
	Kind  string   `json:"kind"`
	Title string   `json:"title"`
	HTML  string   `json:"html"` // rendered when the step is shown; "" before it is reached
	Nodes []string `json:"nodes,omitempty"`
	Done  bool     `json:"done"`
	Error string   `json:"error,omitempty"` // why its commands failed

	// predict
	Choices   []ChoiceState `json:"choices,omitempty"`
	Answer    string        `json:"answer,omitempty"`
	Predicted string        `json:"predicted,omitempty"` // the answer's text
	Outcome   string        `json:"outcome,omitempty"`   // once judged: the choice that happened
	Measured  string        `json:"measured,omitempty"`  // once judged
	Correct   *bool         `json:"correct,omitempty"`   // once judged

	// act: Button when it has commands to send; check or do-it-yourself act:
	// ShowMe when "Show me" has commands to send.
	Button bool `json:"button,omitempty"`
	ShowMe bool `json:"show,omitempty"`

	// check
	Status   string `json:"status,omitempty"` // waiting, passed or not-yet
	LeftMS   int64  `json:"left_ms,omitempty"`
	Hint     string `json:"hint,omitempty"` // only when not-yet
	Assisted bool   `json:"assisted,omitempty"`
}

// ChoiceState is one choice of a predict step.
type ChoiceState struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// pollEvery is how often a session reads the lab while its current step is
// a check that has not passed.
const pollEvery = 250 * time.Millisecond

// Session is one learner going through one walk in one lab. It is safe for
// concurrent use; commands run on its own goroutine.
type Session struct {
	w    *Walk
	lab  Lab
	ctx  context.Context // ends at Close
	stop context.CancelFunc
	wg   sync.WaitGroup
	wake chan struct{} // the poller looks again: the step changed

	mu        sync.Mutex
	cur       int
	since     time.Time // when cur was entered
	lock      int       // the learner may not go past it; -1: no lock
	furthest  int
	running   bool
	resetting bool // running a reset-step: no check is judged meanwhile
	closed    bool
	start     *snapshot // after the reset and setup: the baseline before any
	runs      []stepRun
}

// stepRun is what happened in one step.
type stepRun struct {
	seen     bool
	done     bool
	html     string
	err      string
	base     *snapshot // the baseline this step takes: an act, or a check with no act before it
	entered  time.Time // check: its window began
	passed   bool
	assisted bool
	frozen   *env // check: the values when it passed
	answer   string
	judgedBy int // predict: the check that judged it, -1 before
	outcome  string
	measured string
	correct  *bool
}

// Start resets the lab's scenario, runs the walk's setup commands and returns
// a session on the first step.
func Start(ctx context.Context, w *Walk, lab Lab) (*Session, error) {
	if err := send(ctx, lab, append([]Command{{Reset: true}}, w.setup...), nil); err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	s := &Session{w: w, lab: lab, ctx: sctx, stop: stop, wake: make(chan struct{}, 1),
		runs: make([]stepRun, len(w.Steps)), start: take(lab), lock: -1}
	for i := range s.runs {
		s.runs[i].judgedBy = -1
	}
	s.enter(0)
	s.wg.Add(1)
	go s.poll()
	return s, nil
}

// Close stops the session's goroutines and waits for them; commands being
// sent are cancelled.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// State is the session now.
func (s *Session) State() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state()
}

// Do performs a learner's action and returns the state after it. A bad
// action is refused with a flow.Invalid error and changes nothing. Commands
// run on the session's goroutine, not under ctx: the reply says running.
func (s *Session) Do(ctx context.Context, a Action) (SessionState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.do(a); err != nil {
		return SessionState{}, err
	}
	return s.state(), nil
}

func (s *Session) do(a Action) error {
	if s.closed {
		return flow.Errorf(flow.NotFound, "this walkthrough has ended")
	}
	switch a.Op {
	case "answer", "act", "show", "reset-step", "go":
	default:
		return flow.Errorf(flow.Invalid, "unknown op %q: use answer, act, show, reset-step or go", a.Op)
	}
	if a.Step < 0 || a.Step >= len(s.w.Steps) {
		return flow.Errorf(flow.Invalid, "step %d is out of range: this walk has steps 0 to %d", a.Step, len(s.w.Steps)-1)
	}
	if s.running {
		return flow.Errorf(flow.Invalid, "the lab is still carrying out step %d's commands: wait for them to finish", s.cur+1)
	}
	if a.Op == "go" {
		return s.goTo(a.Step)
	}
	if a.Step != s.cur {
		return flow.Errorf(flow.Invalid, "%s applies to the current step, %d, not %d", a.Op, s.cur, a.Step)
	}
	step, run := s.w.Steps[s.cur], &s.runs[s.cur]
	switch a.Op {
	case "answer":
		if step.Kind != KindPredict {
			return flow.Errorf(flow.Invalid, "only a predict step takes an answer")
		}
		if run.answer != "" {
			return flow.Errorf(flow.Invalid, "this prediction is already answered: the answer locks once given")
		}
		if !slices.ContainsFunc(step.choices, func(c choice) bool { return c.ID == a.Choice }) {
			return flow.Errorf(flow.Invalid, "%q is not one of this step's choices", a.Choice)
		}
		run.answer, run.done = a.Choice, true
	case "act":
		switch {
		case step.Kind != KindAct:
			return flow.Errorf(flow.Invalid, "only an act step has a button to press")
		case len(step.do) == 0:
			return flow.Errorf(flow.Invalid, "this step asks you to use the controls yourself")
		case run.done:
			return flow.Errorf(flow.Invalid, "this step is done: use Reset step to do it again")
		}
		// The baseline again, at the press: what the lab did while the
		// learner read the step is not the act's doing.
		run.base = take(s.lab)
		cur := s.cur
		s.run(cur, step.do, func(err error) {
			s.runs[cur].done = err == nil
		})
	case "show":
		if len(step.show) == 0 {
			return flow.Errorf(flow.Invalid, "this step has no Show me")
		}
		if step.Kind == KindCheck && run.passed {
			return flow.Errorf(flow.Invalid, "this check has already passed")
		}
		run.assisted = true
		s.run(s.cur, step.show, func(error) {})
	case "reset-step":
		target := 0
		for i := s.cur; i >= 0; i-- {
			if s.w.Steps[i].Kind == KindAct {
				target = i
				break
			}
		}
		s.resetting = true
		s.run(s.cur, append([]Command{{Reset: true}}, s.w.setup...), func(err error) {
			s.resetting = false
			if err == nil {
				s.rewind(target)
			}
		})
	}
	return nil
}

// Holds reports whether the check of step i holds on the lab now, measured
// from the baseline it would use, without passing it or judging anything:
// the walkthroughs' own tests use it to prove that a check does not hold
// before its action.
func (s *Session) Holds(i int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.w.Steps) || s.w.Steps[i].Kind != KindCheck {
		return false, flow.Errorf(flow.Invalid, "step %d is not a check", i)
	}
	v, err := s.w.Steps[i].check.run(take(s.lab).env(s.baseline(i)))
	if err != nil {
		return false, flow.Errorf(flow.Invalid, "the check could not be evaluated: %v", err)
	}
	ok, _ := v.(bool)
	return ok, nil
}

// Move is the instructor's "move to step i": any step, reached or not.
// Steps jumped over are marked seen; an act jumped over is not run, a
// check jumped over is not passed.
func (s *Session) Move(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return flow.Errorf(flow.NotFound, "this walkthrough has ended")
	}
	if i < 0 || i >= len(s.w.Steps) {
		return flow.Errorf(flow.Invalid, "step %d is out of range: this walk has steps 0 to %d", i, len(s.w.Steps)-1)
	}
	for j := s.furthest + 1; j < i; j++ {
		s.runs[j].seen = true
		s.runs[j].html = s.w.Steps[j].body.fill(s.envFor(j))
		if k := s.w.Steps[j].Kind; k == KindRead || k == KindExplain {
			s.runs[j].done = true
		}
	}
	s.cur = i
	s.enter(i)
	return nil
}

// Lock keeps the learner from going past step n; -1 removes the lock. The
// instructor's Move is not held by it.
func (s *Session) Lock(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lock = max(n, -1)
}

// goTo moves to step i: any step reached, or the next one once the furthest
// is done (a check whose window is over may be left "not yet").
func (s *Session) goTo(i int) error {
	if s.lock >= 0 && i > s.lock {
		return flow.Errorf(flow.Invalid, "your instructor has not opened step %d yet", i+1)
	}
	if i > s.furthest+1 {
		return flow.Errorf(flow.Invalid, "step %d is not reached yet: the furthest is %d", i, s.furthest)
	}
	if i == s.furthest+1 {
		step, run := s.w.Steps[s.furthest], &s.runs[s.furthest]
		if !run.done && !(step.Kind == KindCheck && s.windowOver(s.furthest)) {
			return flow.Errorf(flow.Invalid, "finish step %d first: %s", s.furthest, unfinished(step))
		}
	}
	s.cur = i
	s.enter(i)
	return nil
}

func unfinished(s *Step) string {
	switch s.Kind {
	case KindPredict:
		return "answer the prediction"
	case KindAct:
		return "press its button"
	case KindCheck:
		return "it has not passed, and its window is not over"
	}
	return "read it"
}

// enter shows step i: it takes the baseline an act or a lone check starts,
// marks what is done by being seen, and renders the step's text.
func (s *Session) enter(i int) {
	step, run := s.w.Steps[i], &s.runs[i]
	run.seen = true
	s.since = time.Now()
	s.furthest = max(s.furthest, i)
	switch step.Kind {
	case KindRead, KindExplain:
		run.done = true
	case KindAct:
		if !run.done {
			run.base = take(s.lab)
			run.done = len(step.do) == 0 // do it yourself: the check waits for the learner
		}
	case KindCheck:
		if !run.passed {
			if s.owner(i) == i && run.base == nil {
				run.base = take(s.lab)
			}
			run.entered = time.Now()
		}
	}
	run.html = step.body.fill(s.envFor(i))
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// owner is the step whose baseline step i measures from: the nearest act
// at or before it, else a check itself; -1 for neither.
func (s *Session) owner(i int) int {
	for j := i; j >= 0; j-- {
		if s.w.Steps[j].Kind == KindAct {
			return j
		}
	}
	if s.w.Steps[i].Kind == KindCheck {
		return i
	}
	return -1
}

func (s *Session) baseline(i int) *snapshot {
	if o := s.owner(i); o >= 0 && s.runs[o].base != nil {
		return s.runs[o].base
	}
	return s.start
}

// envFor is what step i's text reads: for an explain, the values frozen
// when the check before it passed; otherwise the lab now.
func (s *Session) envFor(i int) *env {
	if s.w.Steps[i].Kind == KindExplain {
		for j := i - 1; j >= 0; j-- {
			if s.runs[j].frozen != nil {
				return s.runs[j].frozen
			}
		}
	}
	return take(s.lab).env(s.baseline(i))
}

func (s *Session) windowOver(i int) bool {
	r := &s.runs[i]
	return !r.entered.IsZero() && time.Since(r.entered) >= s.w.Steps[i].within
}

// run sends cmds for step i on the session's goroutine; then, under the
// lock, after.
func (s *Session) run(i int, cmds []Command, after func(error)) {
	s.running = true
	s.runs[i].err = ""
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := send(s.ctx, s.lab, cmds, func() {
			// A reset among the commands starts the counts again: so does
			// the baseline.
			s.mu.Lock()
			if o := s.owner(i); o >= 0 {
				s.runs[o].base = take(s.lab)
			}
			s.mu.Unlock()
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		s.running = false
		if err != nil {
			s.runs[i].err = flow.MessageOf(err)
		}
		after(err)
	}()
}

// send sends cmds in order, pausing at waits; afterReset runs after each
// reset.
func send(ctx context.Context, lab Lab, cmds []Command, afterReset func()) error {
	for _, c := range cmds {
		if c.Wait > 0 {
			t := time.NewTimer(c.Wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err := lab.Command(ctx, c); err != nil {
			return err
		}
		if c.Reset && afterReset != nil {
			afterReset()
		}
	}
	return nil
}

// rewind forgets what happened from step target on, after a reset, and
// enters it again. Answers stay: they lock once given.
func (s *Session) rewind(target int) {
	s.start = take(s.lab)
	for j := range s.runs {
		r := &s.runs[j]
		if r.judgedBy >= target {
			r.judgedBy, r.outcome, r.measured, r.correct = -1, "", "", nil
		}
		if j < target {
			continue
		}
		*r = stepRun{answer: r.answer, done: r.answer != "", judgedBy: r.judgedBy,
			outcome: r.outcome, measured: r.measured, correct: r.correct}
	}
	s.cur, s.furthest = target, target
	s.enter(target)
}

// poll evaluates the current check every pollEvery, and only while the
// current step is a check that has not passed.
func (s *Session) poll() {
	defer s.wg.Done()
	t := time.NewTimer(pollEvery)
	defer t.Stop()
	for {
		s.mu.Lock()
		step, run := s.w.Steps[s.cur], &s.runs[s.cur]
		checking := step.Kind == KindCheck && !run.passed
		s.mu.Unlock()
		var tick <-chan time.Time
		if checking {
			t.Reset(pollEvery)
			tick = t.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tick:
			s.evaluate()
		}
	}
}

// evaluate runs the current check; when it holds, the check passes, its
// values are frozen, and the predictions before it are judged by them.
func (s *Session) evaluate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.cur
	step, run := s.w.Steps[i], &s.runs[i]
	if step.Kind != KindCheck || run.passed || s.resetting {
		return
	}
	e := take(s.lab).env(s.baseline(i))
	v, err := step.check.run(e)
	if err != nil {
		run.err = "the check could not be evaluated: " + err.Error()
		return
	}
	if ok, _ := v.(bool); !ok {
		return
	}
	run.passed, run.done, run.frozen, run.err = true, true, e, ""
	for j := range i {
		p, pr := s.w.Steps[j], &s.runs[j]
		if p.Kind != KindPredict || pr.answer == "" || pr.judgedBy >= 0 {
			continue
		}
		pr.judgedBy = i
		out, err := p.outcome.run(e)
		if err != nil {
			pr.measured = "could not be measured: " + err.Error()
			continue
		}
		pr.outcome, _ = out.(string)
		correct := pr.outcome == pr.answer
		pr.correct = &correct
		pr.measured = p.measured.fill(e)
		if p.measured == nil {
			if k := slices.IndexFunc(p.choices, func(c choice) bool { return c.ID == pr.outcome }); k >= 0 {
				pr.measured = p.choices[k].Text
			}
		}
	}
}

// state is the session as the page shows it.
func (s *Session) state() SessionState {
	st := SessionState{Walk: s.w.ID, Title: s.w.Title, Pattern: s.w.Pattern,
		Step: s.cur, Since: s.since.UnixMilli(), Furthest: s.furthest, Running: s.running, Steps: make([]StepState, len(s.w.Steps))}
	for i, step := range s.w.Steps {
		r := &s.runs[i]
		ss := StepState{Kind: step.Kind, Title: step.Title, Nodes: step.Nodes, Done: r.done, Error: r.err,
			Button: step.Kind == KindAct && len(step.do) > 0, ShowMe: len(step.show) > 0}
		if r.seen {
			ss.HTML = r.html
		}
		switch step.Kind {
		case KindPredict:
			for _, c := range step.choices {
				ss.Choices = append(ss.Choices, ChoiceState{ID: c.ID, Text: c.Text})
				if c.ID == r.answer {
					ss.Predicted = c.Text
				}
			}
			ss.Answer, ss.Outcome, ss.Measured, ss.Correct = r.answer, r.outcome, r.measured, r.correct
		case KindCheck:
			ss.Assisted = r.assisted
			switch {
			case r.passed:
				ss.Status = "passed"
			case r.entered.IsZero():
			case s.windowOver(i):
				ss.Status, ss.Hint = "not-yet", step.hint
			default:
				ss.Status = "waiting"
				ss.LeftMS = (step.within - time.Since(r.entered)).Milliseconds()
			}
		}
		st.Steps[i] = ss
	}
	return st
}
