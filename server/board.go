package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"flowlab/flow"
	progressdb "flowlab/server/progress"
	"flowlab/walk"
)

// classBoard is what the instructor's board shows of a class (board.json).
type classBoard struct {
	V        int            `json:"v"`
	Code     string         `json:"code"`
	JoinURL  string         `json:"join_url"`
	Walk     boardWalk      `json:"walk"`
	Step     int            `json:"step"`
	Lock     int            `json:"lock"`
	Paused   bool           `json:"paused"`
	Now      int64          `json:"now"`
	Learners []boardLearner `json:"learners"`
	Predict  *boardPredict  `json:"predict"`
}

type boardWalk struct {
	ID      string      `json:"id"`
	Title   string      `json:"title"`
	Pattern string      `json:"pattern"`
	Steps   []boardStep `json:"steps"`
}

type boardStep struct {
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	Button bool   `json:"button,omitempty"` // an act with a button: "trigger the fault now" may fire it
}

type boardLearner struct {
	Name      string             `json:"name"`
	Lab       string             `json:"lab"`
	Pattern   string             `json:"pattern"`
	Step      int                `json:"step"`
	StepTitle string             `json:"step_title"`
	Since     int64              `json:"since"`
	Stuck     bool               `json:"stuck"`
	Done      []int              `json:"done"`
	Passed    int                `json:"passed"`
	Checks    int                `json:"checks"`
	Assisted  []int              `json:"assisted"`
	Failed    *progressdb.Failed `json:"failed"`
	Answers   map[string]string  `json:"answers"`
	Online    bool               `json:"online"`
}

type boardPredict struct {
	Step     int           `json:"step"`
	Title    string        `json:"title"`
	Choices  []boardChoice `json:"choices"`
	Measured string        `json:"measured"`
}

type boardChoice struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// liveMember is a member whose sandbox runs the class's walk now.
type liveMember struct {
	progressdb.Keyed
	lab *labRun
	lw  *labWalk
}

// roster is class c's members, each with their sandbox's walk if it runs
// the class's: their place is read live from it (and kept), else as kept.
func (a *App) roster(c progressdb.Class) ([]liveMember, error) {
	ms, err := a.learners.Members(c.Code)
	if err != nil {
		return nil, err
	}
	out := make([]liveMember, len(ms))
	for i, m := range ms {
		out[i].Keyed = m
		l, ok := a.lab(m.Lab)
		if !ok {
			continue
		}
		if lw := l.currentWalk(); lw != nil && lw.walk.ID == c.Walk {
			out[i].lab, out[i].lw = l, lw
			out[i].Place = mergePlace(m.Place, placeOf(lw.session.State()))
			if err := a.learners.UpdateMember(m.Key, func(m *progressdb.Member) { m.Place = out[i].Place }); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// boardOf builds the board of class c.
func (a *App) boardOf(r *http.Request, c progressdb.Class) (classBoard, error) {
	wk, ok := a.walks[c.Walk]
	if !ok {
		return classBoard{}, flow.Errorf(flow.NotFound, "class %s runs the walkthrough %q, which this flowlab does not have", c.Code, c.Walk)
	}
	ms, err := a.roster(c)
	if err != nil {
		return classBoard{}, err
	}
	now := time.Now()
	b := classBoard{V: 1, Code: c.Code, JoinURL: a.joinURL(r, c.Code), Step: c.Step, Lock: c.Lock, Paused: c.Paused,
		Now: now.UnixMilli(), Learners: []boardLearner{},
		Walk: boardWalk{ID: wk.ID, Title: wk.Title, Pattern: wk.Pattern}}
	checks := 0
	for _, s := range wk.Steps {
		b.Walk.Steps = append(b.Walk.Steps, boardStep{Kind: s.Kind, Title: s.Title, Button: s.HasButton()})
		if s.Kind == walk.KindCheck {
			checks++
		}
	}
	for _, m := range ms {
		p := m.Place
		bl := boardLearner{Name: m.Name, Lab: m.Lab, Pattern: wk.Pattern, Step: p.Step, Since: p.Since,
			Done: orEmpty(p.Done), Passed: len(p.Passed), Checks: checks, Assisted: orEmpty(p.Assisted),
			Failed: p.Failed, Answers: p.Answers}
		if bl.Answers == nil {
			bl.Answers = map[string]string{}
		}
		if p.Walk != wk.ID { // kept from an earlier walk of the class: none of it counts
			bl = boardLearner{Name: m.Name, Lab: m.Lab, Pattern: wk.Pattern, Step: c.Step, Since: p.Since, Done: []int{},
				Checks: checks, Assisted: []int{}, Answers: map[string]string{}}
		}
		if bl.Step >= 0 && bl.Step < len(wk.Steps) {
			bl.StepTitle = wk.Steps[bl.Step].Title
		}
		finished := len(bl.Done) == len(wk.Steps)
		bl.Stuck = !finished && bl.Since > 0 && now.Sub(time.UnixMilli(bl.Since)) > stuckAfter
		if m.lab != nil {
			if s, ok := m.lab.scenario(wk.Pattern); ok {
				bl.Online = s.hub.Clients() > 0
			}
		}
		b.Learners = append(b.Learners, bl)
	}
	for i := min(c.Step, len(wk.Steps)-1); i >= 0; i-- {
		if wk.Steps[i].Kind != walk.KindPredict {
			continue
		}
		p := &boardPredict{Step: i, Title: wk.Steps[i].Title, Choices: []boardChoice{}}
		at := strconv.Itoa(i)
		for _, ch := range wk.Steps[i].Choices() {
			bc := boardChoice{ID: ch.ID, Text: ch.Text}
			for _, m := range ms {
				if m.Walk == wk.ID && m.Answers[at] == ch.ID {
					bc.Count++
				}
			}
			p.Choices = append(p.Choices, bc)
		}
		for _, m := range ms {
			if o := m.Outcomes[at]; m.Walk == wk.ID && o != "" {
				p.Measured = o
				break
			}
		}
		b.Predict = p
		break
	}
	return b, nil
}

func orEmpty(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// instructorBoard is the board of the class in r's URL, for the instructor
// only; anyone else, or a class that is not, is answered here and ok is
// false.
func (a *App) instructorBoard(w http.ResponseWriter, r *http.Request) (c progressdb.Class, b classBoard, ok bool) {
	if !a.instructorOnly(w, r) {
		return c, b, false
	}
	c, err := a.classOf(r)
	if err == nil {
		b, err = a.boardOf(r, c)
	}
	if err != nil {
		a.jsonError(w, err)
		return c, b, false
	}
	return c, b, true
}

// handleBoardJSON serves the board's data to the instructor.
func (a *App) handleBoardJSON(w http.ResponseWriter, r *http.Request) {
	_, b, ok := a.instructorBoard(w, r)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, b)
}

// handleBoardCSV exports the board, one row per learner.
func (a *App) handleBoardCSV(w http.ResponseWriter, r *http.Request) {
	c, b, ok := a.instructorBoard(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="flowlab-`+c.Code+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	out := csv.NewWriter(w)
	out.Write([]string{"name", "step", "step title", "seconds on step", "checks passed", "checks", "assisted steps", "last failed check", "its hint"})
	for _, l := range b.Learners {
		var assisted []string
		for _, s := range l.Assisted {
			assisted = append(assisted, strconv.Itoa(s+1))
		}
		failed, hint := "", ""
		if l.Failed != nil {
			failed, hint = fmt.Sprintf("%d. %s", l.Failed.Step+1, l.Failed.Title), l.Failed.Hint
		}
		secs := ""
		if l.Since > 0 {
			secs = strconv.FormatInt(max(b.Now-l.Since, 0)/1000, 10)
		}
		name := l.Name
		if strings.HasPrefix(name, "-") { // a spreadsheet would read it as a formula
			name = "'" + name
		}
		// Steps are numbered from 1 here, as a learner's page numbers them.
		out.Write([]string{name, strconv.Itoa(l.Step + 1), l.StepTitle, secs, strconv.Itoa(l.Passed), strconv.Itoa(l.Checks),
			strings.Join(assisted, " "), failed, hint})
	}
	out.Flush()
}

// qrSize is the QR code's side in pixels: readable from the back of a room.
const qrSize = 512

// handleQR is the join URL as a QR code.
func (a *App) handleQR(w http.ResponseWriter, r *http.Request) {
	if !a.instructorOnly(w, r) {
		return
	}
	c, err := a.classOf(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	png, err := qrcode.Encode(a.joinURL(r, c.Code), qrcode.Medium, qrSize)
	if err != nil {
		a.jsonError(w, flow.Errorf(flow.Internal, "QR code: %v", err))
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

// pace is one of the instructor's pacing commands.
type pace struct {
	Op   string
	Walk string
	Step int
}

// decodePace reads a pace command strictly, as decodeAction reads an
// action.
func decodePace(msg []byte) (pace, error) {
	var p pace
	seen, err := decodeObject(msg, func(name string, raw json.RawMessage) error {
		var dst any
		switch name {
		case "op":
			dst = &p.Op
		case "walk":
			dst = &p.Walk
		case "step":
			dst = &p.Step
		default:
			return fmt.Errorf("unknown field %q: a pace command has only op, walk and step", name)
		}
		if string(raw) == "null" || json.Unmarshal(raw, dst) != nil {
			return fmt.Errorf("field %q has the wrong type: step is a whole number, op and walk are strings", name)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	want := map[string][]string{"walk": {"op", "walk"}, "step": {"op", "step"}, "lock": {"op", "step"},
		"fire": {"op"}, "pause": {"op"}, "resume": {"op"}}
	fields, ok := want[p.Op]
	if !ok {
		return p, fmt.Errorf("op %q is not one of walk, step, lock, fire, pause, resume", p.Op)
	}
	if len(seen) != len(fields) || !seen["op"] || (len(fields) == 2 && !seen[fields[1]]) {
		return p, fmt.Errorf("%q takes %s", p.Op, strings.Join(fields, " and "))
	}
	return p, nil
}

// paceFailure is one learner for whom a pace command failed.
type paceFailure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// handlePace carries out a pacing command in every learner's sandbox and
// answers the board after it (fire: how many pressed, and who failed).
func (a *App) handlePace(w http.ResponseWriter, r *http.Request) {
	if !a.instructorOnly(w, r) {
		return
	}
	if !sameOrigin(r) {
		a.jsonError(w, flow.Errorf(flow.Invalid, "pace the class from its board"))
		return
	}
	if !a.classes.pace.Allow() {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"kind": string(flow.Unavailable),
			"error": fmt.Sprintf("too many pace commands: at most %d at once, then %d a second; this one was not carried out", paceBurst, paceRate)})
		return
	}
	c, err := a.classOf(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, paceMax))
	if err != nil {
		a.jsonError(w, flow.Errorf(flow.Invalid, "a pace command is at most %d bytes of JSON", paceMax))
		return
	}
	p, err := decodePace(body)
	if err != nil {
		a.jsonError(w, flow.Errorf(flow.Invalid, "malformed pace command: %v", err))
		return
	}
	wk := a.walks[c.Walk]
	if p.Op == "walk" {
		if wk = a.walks[p.Walk]; wk == nil {
			a.jsonError(w, flow.Errorf(flow.NotFound, "there is no walkthrough %q", p.Walk))
			return
		}
	}
	if wk == nil {
		a.jsonError(w, flow.Errorf(flow.NotFound, "class %s runs the walkthrough %q, which this flowlab does not have", c.Code, c.Walk))
		return
	}
	n := len(wk.Steps)
	switch {
	case p.Op == "step" && (p.Step < 0 || p.Step >= n):
		err = flow.Errorf(flow.Invalid, "step %d is out of range: this walk has steps 0 to %d", p.Step, n-1)
	case p.Op == "lock" && (p.Step < -1 || p.Step >= n):
		err = flow.Errorf(flow.Invalid, "lock step %d is out of range: -1 (no lock) or 0 to %d", p.Step, n-1)
	case p.Op == "fire" && !wk.Steps[c.Step].HasButton():
		err = flow.Errorf(flow.Invalid, "the class's step %d is not an act with a button: move everyone to one first", c.Step+1)
	case p.Op == "pause" && c.Paused, p.Op == "resume" && !c.Paused:
		err = flow.Errorf(flow.Invalid, "the class is %s already", map[bool]string{true: "paused", false: "running"}[c.Paused])
	}
	if err != nil {
		a.jsonError(w, err)
		return
	}
	// The class first, so that a learner rebuilt meanwhile gets the new
	// state; then every live sandbox.
	c, err = a.learners.UpdateClass(c.Code, func(c *progressdb.Class) error {
		switch p.Op {
		case "walk":
			c.Walk, c.Step, c.Lock = p.Walk, 0, -1
		case "step":
			c.Step = p.Step
		case "lock":
			c.Lock = p.Step
		case "pause":
			c.Paused = true
		case "resume":
			c.Paused = false
		}
		return nil
	})
	if err != nil {
		a.jsonError(w, err)
		return
	}
	ms, err := a.learners.Members(c.Code)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	var mu sync.Mutex
	var failed []paceFailure
	done := 0
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8) // sandboxes changed at once
	for _, m := range ms {
		l, ok := a.lab(m.Lab)
		if !ok {
			if p.Op == "step" || p.Op == "walk" { // rebuilt there when they return
				err := a.learners.UpdateMember(m.Key, func(mm *progressdb.Member) {
					if p.Op == "walk" { // nothing of the walk before counts in this one
						mm.Place = progressdb.Place{Walk: c.Walk}
					}
					mm.Step, mm.Since = c.Step, time.Now().UnixMilli()
				})
				if err != nil {
					a.log.Error("move an absent learner", "class", c.Code, "err", err)
				}
			}
			continue
		}
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			err := a.paceLab(ctx, l, c, wk, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, paceFailure{Name: m.Name, Error: flow.MessageOf(err)})
			} else {
				done++
			}
		}()
	}
	wg.Wait()
	a.log.Info("class paced", "class", c.Code, "op", p.Op, "done", done, "failed", len(failed))
	if p.Op == "fire" {
		slices.SortFunc(failed, func(a, b paceFailure) int { return strings.Compare(a.Name, b.Name) })
		writeJSON(w, http.StatusOK, map[string]any{"done": done, "failed": orNone(failed)})
		return
	}
	b, err := a.boardOf(r, c)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func orNone(f []paceFailure) []paceFailure {
	if f == nil {
		return []paceFailure{}
	}
	return f
}

// paceLab carries out p in one learner's sandbox l.
func (a *App) paceLab(ctx context.Context, l *labRun, c progressdb.Class, wk *walk.Walk, p pace) error {
	if p.Op == "walk" {
		_, err := a.startClassWalk(ctx, l, wk, c, 0)
		return err
	}
	if p.Op == "pause" {
		return errors.Join(a.pauseLab(ctx, l)...)
	}
	if p.Op == "resume" {
		return errors.Join(a.resumeLab(ctx, l)...)
	}
	lw := l.currentWalk()
	if lw == nil || lw.walk.ID != c.Walk {
		return flow.Errorf(flow.NotFound, "their sandbox does not run the class's walkthrough")
	}
	switch p.Op {
	case "step":
		return lw.session.Move(p.Step)
	case "lock":
		lw.session.Lock(p.Step)
	case "fire":
		if st := lw.session.State(); st.Step != c.Step {
			if err := lw.session.Move(c.Step); err != nil {
				return err
			}
		}
		_, err := lw.session.Do(ctx, walk.Action{Op: "act", Step: c.Step})
		return err
	}
	return nil
}

// loadKnob is each pattern's load: the knob pausing a class sets to 0.
var loadKnob = map[string]string{
	"request-response": "rate",
	"event-driven":     "order-service.rate",
	"work-queue":       "order-service.rate",
	"async-messaging":  "rate",
	"compare":          "load.rate",
}

// loadPause is a scenario's load knob held at 0 by the instructor, and the
// value it had.
type loadPause struct {
	knob string
	prev json.RawMessage
}

// pauseLab sets every scenario's load of l to 0, keeping the values.
func (a *App) pauseLab(ctx context.Context, l *labRun) []error {
	var errs []error
	for _, s := range l.scenarios {
		k, ok := loadKnob[s.Name()]
		if !ok || s.pause.Load() != nil {
			continue
		}
		prev := knobValue(s, k)
		if _, err := s.apply(ctx, command{Op: "set", Knob: k, Value: json.RawMessage("0")}, byInstructor); err != nil {
			errs = append(errs, err)
			continue
		}
		s.pause.Store(&loadPause{knob: k, prev: prev})
	}
	return errs
}

// resumeLab sets every paused scenario's load of l back.
func (a *App) resumeLab(ctx context.Context, l *labRun) []error {
	var errs []error
	for _, s := range l.scenarios {
		p := s.pause.Swap(nil)
		if p == nil || p.prev == nil {
			continue
		}
		if _, err := s.apply(ctx, command{Op: "set", Knob: p.knob, Value: p.prev}, byInstructor); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// knobValue is knob's value in s, as JSON; nil if s has no such knob.
func knobValue(s *scenarioRun, knob string) json.RawMessage {
	for _, k := range s.Knobs() {
		if k.Name == knob {
			v, _ := json.Marshal(k.Value)
			return v
		}
	}
	return nil
}

// reopen makes next, the scenario opened again (a restart, a reset, a
// wake after an idle stop), the one s runs; a load its instructor holds at
// 0 stays at 0, as next starts with its knobs' defaults, and resume sets
// back the value from before the pause.
func (s *scenarioRun) reopen(next flow.Scenario) {
	s.sup.reopened(next)
	if p := s.pause.Load(); p != nil {
		if v := knobValue(s, p.knob); v != nil && string(v) != "0" {
			if err := flow.SetKnob(next, p.knob, json.RawMessage("0")); err != nil {
				s.log.Error("keep a paused load at 0", "scenario", s.lab.ID+"/"+s.Name(), "err", err)
			}
		}
	}
}
