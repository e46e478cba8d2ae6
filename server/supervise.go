package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"flowlab/flow"
)

// supervised is the scenario a page shows: the one opened last, and whether
// it failed. A failed scenario is opened again on request, into the same
// emitter and hub, so its browsers see it come back.
type supervised struct {
	open    func(*flow.Emitter) (flow.Scenario, error)
	restart chan struct{} // one pending request at most

	mu        sync.RWMutex
	cur       flow.Scenario
	failed    string             // for a person; "" while it runs
	stop      context.CancelFunc // ends the current run; nil between runs
	crash     error              // a panic in a call from the server, which ended the current run
	lastView  flow.View          // what a page draws meanwhile if View panics
	lastStats flow.Stats         // and if Stats panics
	resets    []chan error       // callers of Reset waiting for the scenario to start over
}

var _ flow.Scenario = (*supervised)(nil)

func newSupervised(open func(*flow.Emitter) (flow.Scenario, error), em *flow.Emitter) (*supervised, error) {
	s, err := open(em)
	if err != nil {
		return nil, err
	}
	return &supervised{open: open, cur: s, restart: make(chan struct{}, 1)}, nil
}

func (v *supervised) current() flow.Scenario {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.cur
}

// Failed says why the scenario stopped, or "" while it runs.
func (v *supervised) Failed() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.failed
}

func (v *supervised) Name() string    { return v.current().Name() }
func (v *supervised) Title() string   { return v.current().Title() }
func (v *supervised) Summary() string { return v.current().Summary() }

// Knobs, Presets, View, Stats and Set run the scenario's code on the server's
// goroutines (a page, a frame, a command): a panic there ends the current run
// as a failure, as a panic in Run does, instead of the process.

func (v *supervised) Knobs() []flow.Knob {
	return guard(v, "Knobs", flow.Scenario.Knobs, func() []flow.Knob { return nil })
}

func (v *supervised) Presets() []flow.Preset {
	return guard(v, "Presets", flow.Scenario.Presets, func() []flow.Preset { return nil })
}

func (v *supervised) View() flow.View {
	return guard(v, "View", func(s flow.Scenario) flow.View {
		view := s.View()
		v.mu.Lock()
		v.lastView = view
		v.mu.Unlock()
		return view
	}, func() flow.View { v.mu.RLock(); defer v.mu.RUnlock(); return v.lastView })
}

func (v *supervised) Stats() flow.Stats {
	return guard(v, "Stats", func(s flow.Scenario) flow.Stats {
		st := s.Stats()
		v.mu.Lock()
		v.lastStats = st
		v.mu.Unlock()
		return st
	}, func() flow.Stats { v.mu.RLock(); defer v.mu.RUnlock(); return v.lastStats })
}

// Set refuses while the scenario is stopped: no service would act on it.
func (v *supervised) Set(knob string, value any) error {
	if f := v.Failed(); f != "" {
		return flow.Errorf(flow.Invalid, "%s has stopped: restart it first", v.Title())
	}
	return guard(v, "Set", func(s flow.Scenario) error { return s.Set(knob, value) }, func() error {
		return flow.Errorf(flow.Internal, "%s failed while changing %s", v.Title(), knob)
	})
}

// guard calls f on the current scenario; if it panics, the current run ends
// as a failure and guard returns fallback's value.
func guard[T any](v *supervised, what string, f func(flow.Scenario) T, fallback func() T) (out T) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("panic in %s: %v\n%s", what, r, debug.Stack())
			v.mu.Lock()
			if v.crash == nil {
				v.crash = err
			}
			stop := v.stop
			v.mu.Unlock()
			if stop != nil {
				stop()
			}
			out = fallback()
		}
	}()
	return f(v.current())
}

// Run runs the current scenario once. A panic in Run's own goroutine, or in
// a call guard watches, becomes its error; one in a goroutine the scenario
// starts itself cannot be caught from here and still ends the process.
func (v *supervised) Run(ctx context.Context) (err error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	v.mu.Lock()
	v.stop, v.crash = stop, nil
	if len(v.resets) > 0 {
		stop() // a reset asked before this run began
	}
	v.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in Run: %v\n%s", r, debug.Stack())
		}
		v.mu.Lock()
		if v.crash != nil {
			err = v.crash
		}
		v.stop = nil
		v.mu.Unlock()
	}()
	return v.current().Run(ctx)
}

// Restart asks a failed scenario to be opened and run again.
func (v *supervised) Restart() error {
	if v.Failed() == "" {
		return flow.Errorf(flow.Invalid, "%s is running: only a scenario that stopped with an error can be restarted", v.Title())
	}
	select {
	case v.restart <- struct{}{}:
	default: // already asked
	}
	return nil
}

// Reset has the scenario start over, running or failed: its run ends, what
// it made on the broker is deleted, its traces are cleared and it is opened
// again with its defaults. It returns once it runs again, or ctx ends.
func (v *supervised) Reset(ctx context.Context) error {
	done := make(chan error, 1)
	v.mu.Lock()
	v.resets = append(v.resets, done)
	stop := v.stop
	v.mu.Unlock()
	if stop != nil {
		stop()
	}
	select { // a failed scenario waits here rather than in Run
	case v.restart <- struct{}{}:
	default:
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return flow.Errorf(flow.Unavailable, "%s is still starting over: look again in a moment", v.Title())
	}
}

// reset starts the scenario over for a command or a request, waiting a
// little longer than a teardown may take.
func (s *scenarioRun) reset(ctx context.Context) error {
	if s.sup == nil {
		return flow.Errorf(flow.Internal, "%s cannot start over here", s.Title())
	}
	ctx, cancel := context.WithTimeout(ctx, resetTimeout+5*time.Second)
	defer cancel()
	return s.sup.Reset(ctx)
}

// takeResets returns the callers of Reset waiting, and forgets them.
func (v *supervised) takeResets() []chan error {
	v.mu.Lock()
	defer v.mu.Unlock()
	waiting := v.resets
	v.resets = nil
	return waiting
}

func (v *supervised) fail(msg string) {
	v.mu.Lock()
	v.failed = msg
	v.mu.Unlock()
}

func (v *supervised) reopened(s flow.Scenario) {
	v.mu.Lock()
	v.cur, v.failed = s, ""
	v.mu.Unlock()
	select {
	case <-v.restart: // a second click for the failure just mended
	default:
	}
}

// Run runs the scenario, its hub and its chart history until ctx ends. The
// scenario failing (an error, a panic, or Run returning before ctx ends)
// stops only this scenario: the failure is logged, shown on its page, and the
// hub keeps serving until a restart brings the scenario back. Run returns nil:
// nothing a scenario does stops the server.
func (s *scenarioRun) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.hub.Run(ctx) })
	wg.Go(func() { s.keepHistory(ctx) })
	name := s.lab.ID + "/" + s.Name()
	for {
		err := s.sup.Run(ctx)
		if ctx.Err() != nil {
			if err != nil {
				s.log.Error("scenario failed while stopping", "scenario", name, "err", err)
			}
			s.answerWaitingResets()
			return nil // stopped with the server: not a failure
		}
		if waiting := s.sup.takeResets(); waiting != nil {
			if err != nil {
				s.log.Error("scenario failed while stopping for a reset", "scenario", name, "err", err)
			}
			if s.startOver(ctx, waiting) {
				continue
			}
			err = errors.New("it could not be opened again after a reset")
		}
		if err == nil {
			err = errors.New("its Run returned before flowlab stopped")
		}
		s.log.Error("scenario failed", "scenario", name, "err", err)
		s.sup.fail(failureMessage(s.Title(), err))
		for reopened := false; !reopened; {
			select {
			case <-ctx.Done():
				s.answerWaitingResets()
				return nil
			case <-s.sup.restart:
			}
			if waiting := s.sup.takeResets(); waiting != nil {
				reopened = s.startOver(ctx, waiting)
				continue
			}
			next, err := s.sup.open(s.emit)
			if err != nil {
				s.log.Error("scenario restart failed", "scenario", name, "err", err)
				s.sup.fail(failureMessage(s.Title(), err))
				continue
			}
			s.reopen(next)
			s.log.Info("scenario restarted", "scenario", name)
			reopened = true
		}
	}
}

// answerWaitingResets answers the resets still waiting when its run ends for good.
func (s *scenarioRun) answerWaitingResets() {
	for _, w := range s.sup.takeResets() {
		w <- flow.Errorf(flow.Unavailable, "flowlab is stopping: %s was not started over", s.Title())
	}
}

// wipe deletes what the scenario's ended run made on its broker and clears
// its traces, event log and chart. A teardown that fails (the broker is
// down) is logged and reported, and the rest is cleared all the same.
func (s *scenarioRun) wipe(ctx context.Context) error {
	var err error
	if t, ok := s.sup.current().(flow.Tearer); ok {
		tctx, cancel := context.WithTimeout(ctx, resetTimeout)
		if terr := t.Teardown(tctx); terr != nil {
			s.log.Error("scenario teardown failed", "scenario", s.lab.ID+"/"+s.Name(), "err", terr)
			err = flow.Errorf(flow.Unavailable, "%s started over, but what it made on its broker could not be deleted: %v", s.Title(), terr)
		}
		cancel()
	}
	s.lab.Traces.Clear(s.Name())
	s.hub.ClearRecent()
	s.tap.clear()
	s.mu.Lock()
	s.history = nil
	s.mu.Unlock()
	return err
}

// resetScenario resets s in lab l. A scenario with no run has nothing running
// to start over: one never opened is as it started, and one stopped for want
// of a browser is opened afresh when next watched, so only what its last run
// left is wiped. Waiting for a run that is not coming would hang the caller.
func (a *App) resetScenario(ctx context.Context, l *labRun, s *scenarioRun) error {
	l.life.Lock()
	running, ran := s.stop != nil, s.ran
	l.life.Unlock()
	switch {
	case running:
		return s.reset(ctx)
	case ran:
		return s.wipe(ctx)
	}
	return nil
}

// resetTimeout bounds deleting a scenario's broker objects on a reset.
const resetTimeout = 15 * time.Second

// startOver resets a scenario whose run has ended: it deletes what the
// scenario made on its broker, clears its traces, event log and chart, and
// opens it again; connected pages get a snapshot. It answers every caller
// waiting, and says whether the scenario was opened again. A teardown that
// fails (the broker is down) is reported but does not keep the scenario
// from starting over.
func (s *scenarioRun) startOver(ctx context.Context, waiting []chan error) bool {
	name := s.lab.ID + "/" + s.Name()
	err := s.wipe(ctx)
	next, oerr := s.sup.open(s.emit)
	if oerr != nil {
		s.log.Error("scenario reset failed", "scenario", name, "err", oerr)
		err = flow.Errorf(flow.Unavailable, "%s could not start over: %v", s.Title(), oerr)
		s.sup.fail(failureMessage(s.Title(), oerr))
	} else {
		s.reopen(next)
		s.log.Info("scenario reset", "scenario", name)
		s.hub.Announce(s.snapshot())
	}
	for _, w := range waiting {
		w <- err
	}
	return oerr == nil
}

// failureMessage is what the page says: the error's message when it is meant
// for a person, and otherwise only that details are in the log.
func failureMessage(title string, err error) string {
	var fe *flow.Error
	if errors.As(err, &fe) && fe.Kind != flow.Internal {
		return fmt.Sprintf("%s stopped: %s. Restart it to try again.", title, strings.TrimSuffix(fe.Message, "."))
	}
	return fmt.Sprintf("%s stopped with an internal error (details are in flowlab's log). Restart it to try again.", title)
}

// mayAct checks that a restart or reset of lab l comes from a page of
// flowlab's own (a form on another site could otherwise post here from a
// learner's browser) and, for a sandbox, from its maker; it answers the
// refusal itself.
func (a *App) mayAct(w http.ResponseWriter, r *http.Request, l *labRun, what string) bool {
	switch {
	case !sameOrigin(r):
		a.jsonError(w, flow.Errorf(flow.Invalid, "a %s must come from flowlab's own page", what))
	case !l.mayChange(r):
		a.jsonError(w, errWatchOnly)
	default:
		return true
	}
	return false
}

// handleRestart restarts a failed scenario.
func (a *App) handleRestart(w http.ResponseWriter, r *http.Request) {
	l, s, err := a.find(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	if !a.mayAct(w, r, l, "restart") {
		return
	}
	if err := s.sup.Restart(); err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]bool{"ok": true})
}

// handleReset starts one scenario over, and answers once it runs again.
func (a *App) handleReset(w http.ResponseWriter, r *http.Request) {
	l, s, err := a.find(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	if !a.mayAct(w, r, l, "reset") {
		return
	}
	if err := a.resetScenario(r.Context(), l, s); err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleLabReset starts every scenario of a lab over, one after another.
func (a *App) handleLabReset(w http.ResponseWriter, r *http.Request) {
	l, ok := a.lab(r.PathValue("lab"))
	if !ok {
		a.jsonError(w, flow.Errorf(flow.NotFound, "there is no lab %q", r.PathValue("lab")))
		return
	}
	if !a.mayAct(w, r, l, "reset") {
		return
	}
	l.setWalk(nil) // its steps would judge a lab started over under them
	var errs []error
	for _, s := range l.scenarios {
		if err := a.resetScenario(r.Context(), l, s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		a.jsonError(w, errs[0])
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// crossOrigin is the standard library's check that a request comes from a
// page of the same origin (Sec-Fetch-Site, else Origin against Host); a
// request from a client that is not a browser carries neither and passes.
var crossOrigin = http.NewCrossOriginProtection()

// sameOrigin says whether r, a POST that changes a lab, comes from
// flowlab's own page.
func sameOrigin(r *http.Request) bool { return crossOrigin.Check(r) == nil }
