// Package walk loads walkthroughs (lessons written as Markdown with a YAML
// header, docs/WALKTHROUGHS.md) and runs them against a live lab: a learner
// reads, predicts, acts and passes checks that are predicates over the lab's
// own counters, facts and events.
//
// Load refuses a file naming anything the lab does not have, with the file
// and line, so a broken walkthrough never reaches a learner. A Session is one
// learner going through one walk in one lab.
package walk

import (
	"context"
	"encoding/json"
	"time"

	"flowlab/flow"
)

// Walk is one walkthrough, loaded and checked against its pattern's catalog.
type Walk struct {
	ID      string // the file name without .md
	Title   string
	Pattern string // request-response, event-driven, work-queue or async-messaging
	Minutes int
	Learn   []string
	Steps   []*Step

	file  string    // walks/<id>.md, for messages
	setup []Command // run after the lab reset, before step 1
}

// The step kinds.
const (
	KindRead    = "read"
	KindPredict = "predict"
	KindAct     = "act"
	KindCheck   = "check"
	KindExplain = "explain"
)

// Step is one section of a walk.
type Step struct {
	Kind  string // KindRead, KindPredict, KindAct, KindCheck or KindExplain
	Title string
	Nodes []string // nodes the diagram highlights during the step
	Line  int      // the heading's line in the file

	body     *text     // the Markdown, rendered to HTML, with its placeholders
	choices  []choice  // predict
	outcome  *program  // predict: → a choice id
	measured *text     // predict: plain text
	do       []Command // act: what its button sends; none for "do it yourself"
	check    *program  // check: → bool
	within   time.Duration
	hint     string
	show     []Command // check, or an act without do: what "Show me" sends
}

type choice struct{ ID, Text string }

// Lab is one scenario of one lab, the walk's pattern, as a session sees it.
type Lab interface {
	Stats() flow.Stats
	Knobs() []flow.Knob
	// Command sets a knob, applies a preset or resets the scenario, announced
	// as done by a walkthrough. Wait commands never reach it.
	Command(ctx context.Context, c Command) error
	// EventCounts are the events of each kind the scenario emitted since it
	// opened or was last reset.
	EventCounts() map[flow.Kind]int64
}

// Command is one thing a walk sends to its lab: exactly one of Set (with
// Value, absent for an action knob), Preset, Reset or Wait.
type Command struct {
	Set    string
	Value  json.RawMessage
	Preset string
	Reset  bool
	Wait   time.Duration
}

// HasButton says whether s is an act with a button to press.
func (s *Step) HasButton() bool { return s.Kind == KindAct && len(s.do) > 0 }

// Choices are a predict step's choices, in the file's order.
func (s *Step) Choices() []ChoiceState {
	var out []ChoiceState
	for _, c := range s.choices {
		out = append(out, ChoiceState{ID: c.ID, Text: c.Text})
	}
	return out
}
