package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"flowlab/flow"
	"flowlab/server/hub"
)

// labRun is one lab's scenarios, each with the hub its browsers watch.
type labRun struct {
	lab       *flow.Lab
	scenarios []*scenarioRun // in tab order
	sandbox   bool           // made by "New sandbox": torn down when unused
	exact     bool           // its emitters never sample: a walkthrough counts its events
	owner     [32]byte       // a sandbox's owner token's SHA-256; the token itself is kept by its maker only

	// life guards when the lab was last used and each scenario's run
	// fields below: a page starting a run, the idle sweep stopping it.
	life     sync.Mutex
	lastUsed time.Time
	gone     bool // torn down: nothing starts again

	walkMu sync.Mutex
	walk   *labWalk // the walkthrough it runs, or nil
}

// scenarioRun is a scenario, its hub and the chart history a joining browser
// needs.
type scenarioRun struct {
	flow.Scenario
	lab     *flow.Lab
	hub     *hub.Hub
	tap     *eventTap // counts what emit passes on to hub, for walkthroughs
	emit    *flow.Emitter
	brokers *brokerWatch
	broker  string // the broker it needs, named as in brokerState; "" for none

	sup *supervised // the Scenario above, when a server runs it (tests of commands use a bare one)
	log *slog.Logger

	mu      sync.Mutex
	history []flow.Point

	// commands runs one command at a time, so that the knob values
	// announced after each go out in the order they were set.
	commands sync.Mutex
	// pause is the load knob a class's instructor holds at 0, or nil.
	pause atomic.Pointer[loadPause]

	lastView   flow.View // the topology the last frame's clients have
	viewSent   bool      // lastView is set
	lastFailed string    // the failure the last frame's clients have

	// Under the lab's life lock.
	stop    context.CancelFunc // ends the current run; nil while stopped
	stopped chan struct{}      // closed when the current run has ended
	ran     bool               // its scenario has run: a new run needs it opened again
	watched time.Time          // last time it was opened or had a browser
}

// historyLen is how many one-second chart points a snapshot carries.
const historyLen = 180

// add opens scenario name with an emitter into a new hub of its own. The hub
// exists first because a scenario may emit from its first moment.
func (l *labRun) add(name, broker string, a *App, open func(*flow.Emitter) (flow.Scenario, error)) error {
	sr := &scenarioRun{lab: l.lab, brokers: a.brokers, broker: broker, log: a.log}
	sr.hub = hub.New(hub.Config{Snapshot: sr.snapshot, Stats: sr.frameStats, Log: a.log})
	// Hops are built and sent for about what a view draws; past that,
	// whole messages one in k (the counters stay exact), unless the lab is
	// exact. Its hub still sends a browser no more than a view draws.
	sr.tap = &eventTap{next: sr.hub}
	sr.emit = flow.NewEmitter(l.lab, name, sr.tap)
	if !l.exact {
		sr.emit.Sample(flow.DrawRate)
	}
	sup, err := newSupervised(open, sr.emit)
	if err != nil {
		return err
	}
	sr.Scenario, sr.sup = sup, sup
	l.scenarios = append(l.scenarios, sr)
	return nil
}

// close frees the scenarios of a lab that will never run: Run with an ended
// context releases what Open took.
func (l *labRun) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, s := range l.scenarios {
		s.Scenario.Run(ctx)
	}
}

func (l *labRun) scenario(name string) (*scenarioRun, bool) {
	for _, s := range l.scenarios {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// keepHistory samples the scenario's once-a-second chart point.
func (s *scenarioRun) keepHistory(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p := s.Stats().Series
			s.mu.Lock()
			if !p.Time.IsZero() && (len(s.history) == 0 || p.Time.After(s.history[len(s.history)-1].Time)) {
				if len(s.history) == historyLen {
					s.history = append(s.history[:0], s.history[1:]...)
				}
				s.history = append(s.history, p)
			}
			s.mu.Unlock()
		}
	}
}

// snapshotMsg is what a joining or lagging browser gets first.
type snapshotMsg struct {
	Type     string        `json:"type"`
	Lab      string        `json:"lab"`
	Scenario string        `json:"scenario"`
	View     flow.View     `json:"view"`
	Knobs    []flow.Knob   `json:"knobs"`
	Presets  []flow.Preset `json:"presets"`
	Stats    flow.Stats    `json:"stats"`
	Brokers  []brokerState `json:"brokers"`
	History  []flow.Point  `json:"history"`
	Recent   []flow.Event  `json:"recent"`
	Drawing  int           `json:"drawing"` // one message in this many is drawn
	Failed   string        `json:"failed"`  // why the scenario stopped; "" while it runs
}

func (s *scenarioRun) snapshot() any {
	s.mu.Lock()
	history := append([]flow.Point(nil), s.history...)
	s.mu.Unlock()
	return snapshotMsg{
		Type: "snapshot", Lab: s.lab.ID, Scenario: s.Name(),
		View: s.View(), Knobs: s.Knobs(), Presets: s.Presets(), Stats: s.Stats(),
		Brokers: s.brokers.States(), History: history, Recent: s.hub.Recent(),
		Drawing: s.emit.Sampling(), Failed: s.sup.Failed(),
	}
}

// frameStatsMsg is what every frame carries besides events: the stats, the
// brokers, and the topology when it has changed (a consumer group's
// assignment, a topic's partitions).
type frameStatsMsg struct {
	flow.Stats
	Brokers []brokerState `json:"brokers"`
	View    *flow.View    `json:"view,omitempty"`
	Drawing int           `json:"drawing"`         // one message in this many is drawn
	Failed  string        `json:"failed"`          // why the scenario stopped; "" while it runs
	Knobs   []flow.Knob   `json:"knobs,omitempty"` // after a failure or a restart: a restarted scenario starts from its defaults
}

// frameStats runs only on the hub's flush, one frame at a time, so lastView
// and lastFailed need no lock.
func (s *scenarioRun) frameStats() any {
	msg := frameStatsMsg{Stats: s.Stats(), Brokers: s.brokers.States(), Drawing: s.emit.Sampling(), Failed: s.sup.Failed()}
	if msg.Failed != s.lastFailed {
		msg.Knobs, s.lastFailed = s.Knobs(), msg.Failed
	}
	// Compared field by field, not encoded: this runs ten times a second
	// for every scenario a browser watches, and the topology rarely changes.
	v := s.View()
	if !s.viewSent || !sameView(v, s.lastView) {
		if s.viewSent {
			msg.View = &v
		}
		// A copy: a scenario may change its slices in place later.
		s.lastView = flow.View{Width: v.Width, Height: v.Height, Nodes: slices.Clone(v.Nodes), Edges: slices.Clone(v.Edges)}
		s.viewSent = true
	}
	return msg
}

// sameView says whether a and b draw the same diagram. Nil and empty lists
// are the same: NoNulls sends both as [].
func sameView(a, b flow.View) bool {
	return a.Width == b.Width && a.Height == b.Height && slices.Equal(a.Nodes, b.Nodes) && slices.Equal(a.Edges, b.Edges)
}

// command is what a browser sends to change the lab: one JSON object of
// these fields, named exactly so, each at most once. "set" takes knob and
// value, "preset" takes preset, "reset" (start the scenario over) nothing.
type command struct {
	ID     int
	Op     string
	Knob   string
	Value  json.RawMessage
	Preset string
}

// reply answers one command; on success it carries every knob's new value.
type reply struct {
	Type  string      `json:"type"`
	ID    int         `json:"id"`
	OK    bool        `json:"ok"`
	Kind  string      `json:"kind,omitempty"`
	Error string      `json:"error,omitempty"`
	Knobs []flow.Knob `json:"knobs,omitempty"`
}

// knobsMsg announces changed knobs to every browser of the scenario, so
// that none shows a stale value.
type knobsMsg struct {
	Type  string      `json:"type"`
	By    string      `json:"by"`    // who changed them, in the learner's words
	Knobs []flow.Knob `json:"knobs"` // only the changed ones, with their new values
}

// A command's origin, as an announcement names it.
const byBrowser = "a browser"

// handle answers one command from a browser; one that may not change the
// lab gets every command refused. Commands name knobs, presets and ops of
// this scenario only, never a queue, exchange or topic, so none can reach
// another lab's broker objects.
func (s *scenarioRun) handle(msg []byte, may bool) any {
	c, err := decodeCommand(msg)
	if err != nil {
		return errorReply(c.ID, flow.Errorf(flow.Invalid, "malformed command: %v", err))
	}
	if !may {
		return errorReply(c.ID, errWatchOnly)
	}
	return s.command(c, byBrowser)
}

// command validates and carries out one command; a bad one changes nothing.
// Whatever it changed is announced to every browser of the scenario, naming
// by, whoever sent it.
func (s *scenarioRun) command(c command, by string) any {
	after, err := s.apply(context.Background(), c, by)
	if err != nil {
		return errorReply(c.ID, err)
	}
	return reply{Type: "reply", ID: c.ID, OK: true, Knobs: after}
}

// apply is command's work: it returns every knob's value after it, or why
// it refused; a reset waits as long as ctx lets it.
func (s *scenarioRun) apply(ctx context.Context, c command, by string) ([]flow.Knob, error) {
	s.commands.Lock()
	defer s.commands.Unlock()
	before := s.Knobs()
	paused := s.pause.Load()
	if paused != nil && by == byBrowser && c.Op == "set" && c.Knob == paused.knob {
		return before, flow.Errorf(flow.Invalid, "paused by your instructor: the load comes back when the class resumes")
	}
	var err error
	switch {
	case c.Op == "set" && c.Preset == "":
		err = flow.SetKnob(s, c.Knob, c.Value)
	case c.Op == "preset" && c.Knob == "" && c.Value == nil:
		err = flow.ApplyPreset(s, c.Preset)
	case c.Op == "reset" && c.Knob == "" && c.Value == nil && c.Preset == "":
		err = s.reset(ctx)
	case c.Op == "set" || c.Op == "preset" || c.Op == "reset":
		err = flow.Errorf(flow.Invalid, "malformed command: \"set\" takes knob and value, \"preset\" takes preset, \"reset\" takes nothing else")
	default:
		err = flow.Errorf(flow.Invalid, "unknown command %q: use \"set\", \"preset\" or \"reset\"", c.Op)
	}
	// A reset, a preset or a walkthrough's command keeps a paused load at
	// 0: what it set is set back on resume.
	if paused != nil && by != byInstructor {
		if v := knobValue(s, paused.knob); v != nil && string(v) != "0" {
			s.pause.Store(&loadPause{knob: paused.knob, prev: v})
			if zerr := flow.SetKnob(s, paused.knob, []byte("0")); zerr != nil {
				err = errors.Join(err, zerr)
			}
		}
	}
	after := s.Knobs()
	// A preset refused part-way may have kept some values: announce
	// whatever changed, refused or not.
	if changed := changedKnobs(before, after); len(changed) > 0 {
		s.hub.Announce(knobsMsg{Type: "knobs", By: by, Knobs: changed})
	}
	return after, err
}

// changedKnobs returns the knobs of after whose value differs from before.
func changedKnobs(before, after []flow.Knob) []flow.Knob {
	was := make(map[string]any, len(before))
	for _, k := range before {
		was[k.Name] = k.Value
	}
	var changed []flow.Knob
	for _, k := range after {
		if v, ok := was[k.Name]; !ok || v != k.Value {
			changed = append(changed, k)
		}
	}
	return changed
}

func errorReply(id int, err error) reply {
	return reply{Type: "reply", ID: id, Kind: string(flow.KindOf(err)), Error: flow.MessageOf(err)}
}

// decodeCommand reads a command strictly. encoding/json alone takes what
// follows the object (Decoder.More is false before "]" or "}"), names in
// another case or by Unicode folding ("KNOB", "\u212anob"), and the last of
// duplicate names; none of those is a command. On error, c has the id read
// so far, for the reply.
func decodeCommand(msg []byte) (c command, err error) {
	_, err = decodeObject(msg, c.setField)
	return c, err
}

// decodeObject reads msg, one JSON object and nothing else, handing each
// field to set by its exact name; a name given twice is an error. It
// returns the names seen.
func decodeObject(msg []byte, set func(name string, raw json.RawMessage) error) (map[string]bool, error) {
	if !utf8.Valid(msg) || !json.Valid(msg) {
		return nil, errors.New("not one JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	if t, _ := dec.Token(); t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	// json.Valid has checked the whole message, so the object's end is the
	// message's end and every name is a string.
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return seen, err
		}
		name := t.(string)
		if seen[name] {
			return seen, fmt.Errorf("field %q appears twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return seen, err
		}
		if err := set(name, raw); err != nil {
			return seen, err
		}
	}
	return seen, nil
}

func (c *command) setField(name string, raw json.RawMessage) error {
	var dst any
	switch name {
	case "id":
		dst = &c.ID
	case "op":
		dst = &c.Op
	case "knob":
		dst = &c.Knob
	case "preset":
		dst = &c.Preset
	case "value":
		c.Value = raw
		return nil
	default:
		return fmt.Errorf("unknown field %q: a command has only id, op, knob, value and preset, named exactly so", name)
	}
	// null would leave the field as it was; a number must be a plain integer.
	if string(raw) == "null" || json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("field %q has the wrong type: id is a whole number, the others are strings", name)
	}
	return nil
}
