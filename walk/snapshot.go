package walk

import (
	"time"

	"flowlab/flow"
)

// snapshot is the lab's state at one moment, as checks read it.
type snapshot struct {
	at       time.Time
	counters map[string]int
	facts    map[string]map[string]any
	state    map[string]string
	knobs    map[string]any
	events   map[string]int
}

// take reads the lab now.
func take(lab Lab) *snapshot {
	st := lab.Stats()
	s := &snapshot{
		at:       time.Now(),
		counters: map[string]int{},
		facts:    map[string]map[string]any{},
		state:    map[string]string{},
		knobs:    map[string]any{},
		events:   map[string]int{},
	}
	// Ledger names first: a name that is both a counter and a ledger part
	// has one value.
	s.counters[st.Ledger.Total.Name] = int(st.Ledger.Total.Value)
	for _, c := range st.Ledger.Parts {
		s.counters[c.Name] = int(c.Value)
	}
	if d := st.Ledger.Duplicates; d != nil {
		s.counters[d.Name] = int(d.Value)
	}
	for _, c := range st.Counters {
		s.counters[c.Name] = int(c.Value)
	}
	delete(s.counters, "")
	for id, ns := range st.Nodes {
		s.state[id] = ns.State
		fs := make(map[string]any, len(ns.Facts))
		for _, f := range ns.Facts {
			fs[f.Name] = f.Value
		}
		s.facts[id] = fs
	}
	for _, k := range lab.Knobs() {
		if k.Type != flow.ActionKnob {
			s.knobs[k.Name] = k.Value
		}
	}
	for k, n := range lab.EventCounts() {
		s.events[string(k)] = int(n)
	}
	return s
}

// env is the check environment of s measured from base.
func (s *snapshot) env(base *snapshot) *env {
	e := &env{Counters: s.counters, Facts: s.facts, State: s.state, Knobs: s.knobs,
		Delta: map[string]int{}, Events: map[string]int{}, Seconds: s.at.Sub(base.at).Seconds()}
	for name, v := range s.counters {
		e.Delta[name] = v - base.counters[name]
	}
	for kind, n := range s.events {
		e.Events[kind] = n - base.events[kind]
	}
	return e
}
