package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/walk"
)

// Every shipped walkthrough is played as a learner would, each in a fresh
// sandbox of the real brokers: answer each prediction, press each act's
// button (or, for an act that asks the learner to use the controls, "Show
// me"), and every check must pass within its window. Before each act, the
// check after it must not hold, even after a pause of doing nothing: so no
// check can pass unless its act is done. Explanations and measured outcomes
// must quote numbers. Then "Reset step" from the end must go back to the last
// act, which alone must lead its check to pass again: a learner who resets is
// not stuck. A walkthrough that drifts from the code fails here.
func TestWalksAreSolvable(t *testing.T) {
	a, _ := startServer(t, func(*App, string) {})
	if len(a.walkOrder) == 0 {
		t.Fatal("flowlab ships no walkthroughs")
	}
	for _, w := range a.walkOrder {
		t.Run(w.ID, func(t *testing.T) {
			// Most of a walk's time is waiting (its own waits, then a
			// check's window): as many at once as -parallel allows.
			t.Parallel()
			solveWalk(t, a, w)
		})
	}
}

// idleProbe is how long the test does nothing before an act, then asks
// again whether the check after it holds.
const idleProbe = time.Second

// checkLimit bounds the wait for a check, should its window never end.
const checkLimit = 3 * time.Minute

func solveWalk(t *testing.T, a *App, w *walk.Walk) {
	started := time.Now()
	l, err := a.openLab(testLab(), true) // exact, as a walkthrough's sandbox is
	if err != nil {
		t.Fatal(err)
	}
	if !a.addLab(l, a.cfg.MaxLabs) {
		l.close()
		t.Fatal("flowlab is full")
	}
	t.Cleanup(func() { a.teardown(context.Background(), l, "its walkthrough test ended") })
	sr, ok := l.scenario(w.Pattern)
	if !ok {
		t.Fatalf("the lab has no %s", w.Pattern)
	}
	if err := a.wake(l, sr, true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := walk.Start(ctx, w, walkLab{a: a, lab: l, s: sr})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Close()

	do := func(op string, step int, choice string) {
		t.Helper()
		if _, err := s.Do(ctx, walk.Action{Op: op, Step: step, Choice: choice}); err != nil {
			t.Fatalf("%s step %d %q: %v", op, step, w.Steps[step].Title, err)
		}
	}
	// settle waits for step i's commands to finish.
	settle := func(i int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := s.State()
			if !st.Running {
				if e := st.Steps[i].Error; e != "" {
					t.Fatalf("step %d %q: its commands failed: %s", i, w.Steps[i].Title, e)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d %q: its commands still run after 2 minutes", i, w.Steps[i].Title)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// idle asserts that check i does not hold yet, now and after a pause of
	// doing nothing, at step at.
	idle := func(i, at int) {
		t.Helper()
		for _, pause := range []time.Duration{0, idleProbe} {
			time.Sleep(pause)
			if held, err := s.Holds(i); err != nil || held {
				t.Fatalf("check %d %q holds (%v, %v) %v into step %d, before its action: it can pass by doing nothing",
					i, w.Steps[i].Title, held, err, pause, at)
			}
		}
	}

	quoted := false // an explanation quotes the learner's numbers
	// play goes through the walk from step from, the current one, to its end.
	play := func(from int) {
		t.Helper()
		for i := from; i < len(w.Steps); i++ {
			step := w.Steps[i]
			if i > from {
				do("go", i, "")
			}
			st := s.State()
			switch step.Kind {
			case walk.KindPredict:
				if st.Steps[i].Answer == "" { // an answer locks, and stays through Reset step
					do("answer", i, st.Steps[i].Choices[0].ID)
				}
			case walk.KindAct:
				check := nextCheck(w, i)
				if check < 0 {
					t.Fatalf("act %d %q has no check after it", i, step.Title)
				}
				idle(check, i)
				switch {
				case st.Steps[i].Button:
					do("act", i, "")
				case st.Steps[i].ShowMe:
					do("show", i, "")
				}
				settle(i)
			case walk.KindCheck:
				// After an act the learner does alone with no Show me of its
				// own, or with no act before it, the check's Show me solves it.
				if owner := prevAct(w, i); owner < 0 || !st.Steps[owner].Button && !st.Steps[owner].ShowMe {
					if !st.Steps[i].ShowMe {
						t.Fatalf("check %d %q has no action before it and no Show me: it passes by doing nothing, or never", i, step.Title)
					}
					idle(i, i)
					do("show", i, "")
					settle(i)
				}
				entered := time.Now()
				for {
					st = s.State()
					if st.Steps[i].Status == "passed" {
						t.Logf("check %d %q passed in %.1fs", i, step.Title, time.Since(entered).Seconds())
						break
					}
					if st.Steps[i].Status == "not-yet" || time.Since(entered) > checkLimit {
						t.Fatalf("check %d %q did not pass within its window (hint: %s)\nthe lab now: %s",
							i, step.Title, st.Steps[i].Hint, countersText(sr.Stats()))
					}
					if e := st.Steps[i].Error; e != "" {
						t.Fatalf("check %d %q: %s", i, step.Title, e)
					}
					time.Sleep(100 * time.Millisecond)
				}
			case walk.KindExplain:
				html := st.Steps[i].HTML
				if failedPlaceholder.MatchString(html) {
					t.Errorf("explain %d %q: a placeholder could not be evaluated (a lone ?):\n%s", i, step.Title, html)
				}
				quoted = quoted || strings.ContainsAny(html, "0123456789")
			}
		}
	}
	play(0)
	// Reset step from the end goes back to the last act: the lab starts
	// over, and that act alone must again lead its check to pass.
	end := len(w.Steps) - 1
	do("reset-step", end, "")
	settle(end)
	if last, cur := prevAct(w, end+1), s.State().Step; cur != last {
		t.Fatalf("Reset step from the end went to step %d, not the last act, %d", cur, last)
	}
	play(prevAct(w, end+1))
	if !quoted {
		t.Error("no explanation quotes a number")
	}
	for i, ss := range s.State().Steps {
		if ss.Kind != walk.KindPredict {
			continue
		}
		if ss.Correct == nil {
			t.Errorf("predict %d %q was never judged: no check after it passed", i, ss.Title)
		}
		if err := quotesNumbers(ss.Measured); err != nil {
			t.Errorf("predict %d %q measured: %v", i, ss.Title, err)
		}
		t.Logf("predict %d %q: predicted %q; measured %q", i, ss.Title, ss.Predicted, ss.Measured)
	}
	t.Logf("%s solved in %.1fs", w.ID, time.Since(started).Seconds())
}

// nextCheck is the first check after act i, before any other act; -1 if none.
func nextCheck(w *walk.Walk, i int) int {
	for j := i + 1; j < len(w.Steps); j++ {
		switch w.Steps[j].Kind {
		case walk.KindCheck:
			return j
		case walk.KindAct:
			return -1
		}
	}
	return -1
}

// prevAct is the act a check measures from: the nearest one before it, or -1.
func prevAct(w *walk.Walk, i int) int {
	for j := i - 1; j >= 0; j-- {
		if w.Steps[j].Kind == walk.KindAct {
			return j
		}
	}
	return -1
}

// failedPlaceholder finds the "?" a placeholder that could not be evaluated
// leaves: one that ends no word, quote or entity, as a question mark in prose
// does.
var failedPlaceholder = regexp.MustCompile(`(^|[^\p{L}\p{N})\]"'’”*_.!;])\?`)

// quotesNumbers says whether a rendered text quotes the learner's numbers:
// it holds a digit, and no placeholder failed.
func quotesNumbers(text string) error {
	if failedPlaceholder.MatchString(text) {
		return fmt.Errorf("a placeholder could not be evaluated (a lone ?)")
	}
	if !strings.ContainsAny(text, "0123456789") {
		return fmt.Errorf("quotes no number")
	}
	return nil
}

// countersText is every counter of st, for a failure's message.
func countersText(st flow.Stats) string {
	var b strings.Builder
	for _, c := range st.Counters {
		fmt.Fprintf(&b, "%s=%d ", c.Name, c.Value)
	}
	return b.String()
}
