package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"flowlab/flow"
	"flowlab/server/hub"
)

// labRun is one lab's scenarios, each with the hub its browsers watch.
type labRun struct {
	lab       *flow.Lab
	scenarios []*scenarioRun // in tab order
}

// scenarioRun is a scenario, its hub and the chart history a joining browser
// needs.
type scenarioRun struct {
	flow.Scenario
	lab     *flow.Lab
	hub     *hub.Hub
	emit    *flow.Emitter
	brokers *brokerWatch
	broker  string // the broker it needs, named as in brokerState; "" for none

	mu      sync.Mutex
	history []flow.Point

	lastView []byte // the topology the last frame's clients have
}

// historyLen is how many one-second chart points a snapshot carries.
const historyLen = 180

// add opens scenario name with an emitter into a new hub of its own. The hub
// exists first because a scenario may emit from its first moment.
func (l *labRun) add(name, broker string, a *App, open func(*flow.Emitter) (flow.Scenario, error)) error {
	sr := &scenarioRun{lab: l.lab, brokers: a.brokers, broker: broker}
	sr.hub = hub.New(hub.Config{Snapshot: sr.snapshot, Stats: sr.frameStats, Log: a.log})
	// Hops are built and sent for about what a view draws; past that,
	// whole messages one in k (the counters stay exact).
	sr.emit = flow.NewEmitter(l.lab, name, sr.hub).Sample(flow.DrawRate)
	s, err := open(sr.emit)
	if err != nil {
		return err
	}
	sr.Scenario = s
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

// Run runs the scenario, its hub and its chart history until ctx ends.
func (s *scenarioRun) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.hub.Run(ctx) }()
	go func() { defer wg.Done(); s.keepHistory(ctx) }()
	err := s.Scenario.Run(ctx)
	wg.Wait()
	return err
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
}

func (s *scenarioRun) snapshot() any {
	s.mu.Lock()
	history := append([]flow.Point(nil), s.history...)
	s.mu.Unlock()
	return snapshotMsg{
		Type: "snapshot", Lab: s.lab.ID, Scenario: s.Name(),
		View: s.View(), Knobs: s.Knobs(), Presets: s.Presets(), Stats: s.Stats(),
		Brokers: s.brokers.States(), History: history, Recent: s.hub.Recent(),
		Drawing: s.emit.Sampling(),
	}
}

// frameStatsMsg is what every frame carries besides events: the stats, the
// brokers, and the topology when it has changed (a consumer group's
// assignment, a topic's partitions).
type frameStatsMsg struct {
	flow.Stats
	Brokers []brokerState `json:"brokers"`
	View    *flow.View    `json:"view,omitempty"`
	Drawing int           `json:"drawing"` // one message in this many is drawn
}

// frameStats runs only on the hub's flush, one frame at a time, so lastView
// needs no lock.
func (s *scenarioRun) frameStats() any {
	msg := frameStatsMsg{Stats: s.Stats(), Brokers: s.brokers.States(), Drawing: s.emit.Sampling()}
	v := s.View()
	if b, err := json.Marshal(v); err == nil && !bytes.Equal(b, s.lastView) {
		if s.lastView != nil {
			msg.View = &v
		}
		s.lastView = b
	}
	return msg
}

// command is what a browser sends to change the lab.
type command struct {
	ID     int             `json:"id"`
	Op     string          `json:"op"` // "set" or "preset"
	Knob   string          `json:"knob,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	Preset string          `json:"preset,omitempty"`
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

// handle validates and carries out one command; a bad one changes nothing.
func (s *scenarioRun) handle(msg []byte) any {
	var c command
	if err := decodeStrict(msg, &c); err != nil {
		return errorReply(c.ID, flow.Errorf(flow.Invalid, "malformed command: %v", err))
	}
	var err error
	switch c.Op {
	case "set":
		err = flow.SetKnob(s, c.Knob, c.Value)
	case "preset":
		err = flow.ApplyPreset(s, c.Preset)
	default:
		err = flow.Errorf(flow.Invalid, "unknown command %q: use \"set\" or \"preset\"", c.Op)
	}
	if err != nil {
		return errorReply(c.ID, err)
	}
	return reply{Type: "reply", ID: c.ID, OK: true, Knobs: s.Knobs()}
}

func errorReply(id int, err error) reply {
	return reply{Type: "reply", ID: id, Kind: string(flow.KindOf(err)), Error: flow.MessageOf(err)}
}

func decodeStrict(msg []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
