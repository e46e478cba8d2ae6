package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"flowlab/flow"
	"flowlab/walk"
	"flowlab/web"
)

// byWalk names a walkthrough as the sender of the knob changes it makes,
// in the announcement every browser of the lab gets.
const byWalk = "a walkthrough"

// walkLab is one scenario of one lab as a walkthrough drives it: the same
// validated, announced commands as a page's knobs, and the scenario's own
// reset.
type walkLab struct {
	a   *App
	lab *labRun
	s   *scenarioRun
}

var _ walk.Lab = walkLab{}

func (w walkLab) Stats() flow.Stats  { return w.s.Stats() }
func (w walkLab) Knobs() []flow.Knob { return w.s.Knobs() }

// EventCounts are the scenario's events of each kind since it opened or
// last started over.
func (w walkLab) EventCounts() map[flow.Kind]int64 { return w.s.tap.counts() }

// Command sets a knob, applies a preset or starts the scenario over. The
// scenario is woken first: one stopped for want of a browser would neither
// act on a knob nor start over.
func (w walkLab) Command(ctx context.Context, c walk.Command) error {
	if err := w.a.wake(w.lab, w.s, false); err != nil {
		return err
	}
	var cmd command
	switch {
	case c.Reset:
		cmd.Op = "reset"
	case c.Preset != "":
		cmd.Op, cmd.Preset = "preset", c.Preset
	case c.Set != "":
		cmd.Op, cmd.Knob, cmd.Value = "set", c.Set, c.Value
	default:
		return flow.Errorf(flow.Invalid, "a walkthrough command sets a knob, applies a preset or resets")
	}
	_, err := w.s.apply(ctx, cmd, byWalk)
	return err
}

// eventTap counts the events of each kind a scenario's emitter passes on,
// on their way to its hub. Counting is an atomic add: it never blocks a
// scenario. The count is exact in an exact lab, whose emitters pass on
// every event; a sampling emitter (past flow.DrawRate hops a second, which
// a burst of 100 reaches) never builds the hops of messages it does not
// draw, so a walkthrough's lab is always an exact one.
type eventTap struct {
	next  flow.Sink
	kinds sync.Map // flow.Kind → *atomic.Int64
}

func (t *eventTap) Emit(e flow.Event) {
	n, ok := t.kinds.Load(e.Kind)
	if !ok {
		n, _ = t.kinds.LoadOrStore(e.Kind, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
	t.next.Emit(e)
}

func (t *eventTap) counts() map[flow.Kind]int64 {
	out := map[flow.Kind]int64{}
	t.kinds.Range(func(k, n any) bool {
		out[k.(flow.Kind)] = n.(*atomic.Int64).Load()
		return true
	})
	return out
}

// clear starts the counts over, as the scenario does on a reset.
func (t *eventTap) clear() {
	t.kinds.Range(func(_, n any) bool {
		n.(*atomic.Int64).Store(0)
		return true
	})
}

// loadWalks reads every walkthrough in fsys, each checked against the
// knobs and presets of the default lab's scenario of its pattern: a file
// with a mistake stops flowlab from starting, naming the file and line.
func (a *App) loadWalks(fsys fs.FS) error {
	l, ok := a.labs[a.home]
	if !ok {
		return fmt.Errorf("the default lab is not open")
	}
	cats := map[string]*walk.Catalog{}
	for _, s := range l.scenarios {
		c, err := walk.NewCatalog(s.Name(), s.Knobs(), s.Presets())
		if err != nil {
			return err
		}
		cats[s.Name()] = c
	}
	walks, err := walk.Load(fsys, cats)
	if err != nil {
		return fmt.Errorf("a walkthrough is broken, so flowlab does not start:\n%w", err)
	}
	a.walks = map[string]*walk.Walk{}
	for _, w := range walks {
		a.walks[w.ID] = w
		a.walkOrder = append(a.walkOrder, w)
	}
	return nil
}

// labWalk is the walkthrough a lab runs: one at a time, closed when the lab
// is torn down or reset as a whole.
type labWalk struct {
	walk    *walk.Walk
	session *walk.Session
	limit   *rate.Limiter // the learner's actions, so that no page floods the lab
}

// Actions a learner may send a walk: a burst, then this many a second.
const (
	walkActionBurst = 20
	walkActionRate  = 10
	walkActionMax   = 1 << 10 // bytes in one action
)

// setWalk makes w the lab's walkthrough, closing the one before.
func (l *labRun) setWalk(w *labWalk) {
	l.walkMu.Lock()
	old := l.walk
	l.walk = w
	l.walkMu.Unlock()
	if old != nil {
		old.session.Close()
	}
}

func (l *labRun) currentWalk() *labWalk {
	l.walkMu.Lock()
	defer l.walkMu.Unlock()
	return l.walk
}

// handleNewWalk opens a fresh sandbox, as "New sandbox" does, and starts
// walkthrough id there, so it starts from a known state.
func (a *App) handleNewWalk(w http.ResponseWriter, r *http.Request) {
	wk, ok := a.walks[r.PathValue("id")]
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.NotFound, "there is no walkthrough %q", r.PathValue("id")))
		return
	}
	if !sameOrigin(r) {
		a.pageError(w, r, flow.Errorf(flow.Invalid, "a walkthrough must be started from flowlab's own page"))
		return
	}
	// Exact: its checks count events of each kind.
	l, err := a.newSandbox(w, r, true)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	if _, err := a.startWalk(r.Context(), l, wk); err != nil {
		a.teardown(context.WithoutCancel(r.Context()), l, "its walkthrough could not start")
		a.pageError(w, r, err)
		return
	}
	learner(w, r) // starting a walk makes the browser a learner, whose progress is kept
	a.log.Info("walkthrough started", "lab", l.lab.ID, "walk", wk.ID)
	http.Redirect(w, r, "/labs/"+l.lab.ID+"/"+wk.Pattern+"?walk="+url.QueryEscape(wk.ID), http.StatusSeeOther)
}

// handleWalk answers the lab's walkthrough as it is now; anyone who may
// watch the lab may read it.
func (a *App) handleWalk(w http.ResponseWriter, r *http.Request) {
	l, lw, err := a.findWalk(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	st := lw.session.State()
	st.Lab = l.lab.ID
	if l.mayChange(r) {
		a.recordProgress(r, st)
	}
	writeJSON(w, http.StatusOK, classWalkState{SessionState: st, Class: a.classOfLab(l, st)})
}

// handleWalkAction carries out one action of the lab's learner: its owner,
// from flowlab's own page.
func (a *App) handleWalkAction(w http.ResponseWriter, r *http.Request) {
	l, lw, err := a.findWalk(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	if !a.mayAct(w, r, l, "walkthrough action") {
		return
	}
	if !lw.limit.Allow() {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"kind": string(flow.Unavailable),
			"error": fmt.Sprintf("too many actions: at most %d at once, then %d a second; this one was not carried out", walkActionBurst, walkActionRate)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, walkActionMax))
	if err != nil {
		a.jsonError(w, flow.Errorf(flow.Invalid, "an action is at most %d bytes of JSON", walkActionMax))
		return
	}
	act, err := decodeAction(body)
	if err != nil {
		a.jsonError(w, flow.Errorf(flow.Invalid, "malformed action: %v", err))
		return
	}
	st, err := lw.session.Do(r.Context(), act)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	st.Lab = l.lab.ID
	a.recordProgress(r, st)
	writeJSON(w, http.StatusOK, classWalkState{SessionState: st, Class: a.classOfLab(l, st)})
}

// findWalk resolves the lab in the URL and its walkthrough.
func (a *App) findWalk(r *http.Request) (*labRun, *labWalk, error) {
	l, ok := a.lab(r.PathValue("lab"))
	if !ok && a.tornDown(r.PathValue("lab")) {
		return nil, nil, a.goneError()
	}
	if !ok {
		return nil, nil, flow.Errorf(flow.NotFound, "there is no lab %q", r.PathValue("lab"))
	}
	lw := l.currentWalk()
	if lw == nil {
		return nil, nil, flow.Errorf(flow.NotFound, "lab %q runs no walkthrough: start one from the start page", l.lab.ID)
	}
	return l, lw, nil
}

// recordProgress keeps in the learner's progress what their own page is
// sent of their walk: r is that page's request, whose cookie names the
// learner. A store that cannot be written is logged: the walk goes on.
func (a *App) recordProgress(r *http.Request, st walk.SessionState) {
	id := learnerOf(r)
	if id == "" || a.learners == nil {
		return
	}
	if err := a.recordSession(id, st); err != nil {
		a.log.Error("record a learner's progress", "walk", st.Walk, "err", err)
	}
}

// decodeAction reads a learner's action strictly, as decodeCommand reads a
// command: exact names, each once, op and step required, nothing after.
func decodeAction(msg []byte) (walk.Action, error) {
	var act walk.Action
	seen, err := decodeObject(msg, func(name string, raw json.RawMessage) error {
		var dst any
		switch name {
		case "op":
			dst = &act.Op
		case "step":
			dst = &act.Step
		case "choice":
			dst = &act.Choice
		default:
			return fmt.Errorf("unknown field %q: an action has only op, step and choice, named exactly so", name)
		}
		if string(raw) == "null" || json.Unmarshal(raw, dst) != nil {
			return fmt.Errorf("field %q has the wrong type: step is a whole number, op and choice are strings", name)
		}
		return nil
	})
	if err == nil && (!seen["op"] || !seen["step"]) {
		err = errors.New(`an action needs "op" and "step"`)
	}
	return act, err
}

// walkOf is the walkthrough panel of lab l's page of pattern: the walk the
// lab runs on it, or the one ?walk= names (once, and a walk flowlab has),
// which the lab may no longer run. Nil when neither.
func (a *App) walkOf(r *http.Request, l *labRun, pattern string) (*web.WalkPanel, error) {
	asked := ""
	if values, ok := r.URL.Query()["walk"]; ok {
		if len(values) != 1 {
			return nil, flow.Errorf(flow.Invalid, "walk is given %d times: give it once", len(values))
		}
		wk, ok := a.walks[values[0]]
		if !ok {
			return nil, flow.Errorf(flow.NotFound, "there is no walkthrough %q", values[0])
		}
		if wk.Pattern != pattern {
			return nil, flow.Errorf(flow.Invalid, "the walkthrough %q is about %s, not %s", wk.ID, wk.Pattern, pattern)
		}
		asked = wk.ID
	}
	if lw := l.currentWalk(); lw != nil && lw.walk.Pattern == pattern && (asked == "" || asked == lw.walk.ID) {
		return &web.WalkPanel{ID: lw.walk.ID, Title: lw.walk.Title, Minutes: lw.walk.Minutes}, nil
	}
	if asked == "" {
		return nil, nil
	}
	wk := a.walks[asked]
	return &web.WalkPanel{ID: wk.ID, Title: wk.Title, Minutes: wk.Minutes, Gone: true}, nil
}

// walkLinks are the walkthroughs of pattern, in file order.
func (a *App) walkLinks(pattern string) []web.WalkLink {
	var out []web.WalkLink
	for _, w := range a.walkOrder {
		if w.Pattern == pattern {
			out = append(out, web.WalkLink{ID: w.ID, Title: w.Title, Minutes: w.Minutes})
		}
	}
	return out
}
