package flow

import (
	"context"
	"time"
)

// Scenario is one communication pattern running for real in a lab: its sample
// services, its knobs and what it tells the view. The server validates every
// command against Knobs before it calls Set.
type Scenario interface {
	// Name is the scenario's stable id, used in URLs and commands.
	Name() string
	// Title and Summary are what the page says about it.
	Title() string
	Summary() string
	// Knobs declares every knob with its current value.
	Knobs() []Knob
	// Presets are named sets of knob values, applied in one click.
	Presets() []Preset
	// Set changes one knob to a value already checked by Knob.Parse. It may
	// still refuse (Invalid) when the knob does not apply in the current mode,
	// and then changes nothing.
	Set(knob string, value any) error
	// View is the topology: nodes and edges, with their current states.
	View() View
	// Stats are the live counters, cheap enough to call every frame.
	Stats() Stats
	// Run runs the sample services until ctx ends.
	Run(ctx context.Context) error
}

// View is a scenario's topology as the diagram draws it. Coordinates are on a
// canvas Width × Height, 1000 × 560 when those are zero; nodes are centred on
// their X, Y and sized by the view to fit their label and badges.
type View struct {
	Width  float64 `json:"width,omitempty"`
	Height float64 `json:"height,omitempty"`
	Nodes  []Node  `json:"nodes"`
	Edges  []Edge  `json:"edges"`
}

// Node is a service, broker object or client in the diagram.
type Node struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Kind  string  `json:"kind"` // service, exchange, queue, topic, partition, consumer, client
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Note  string  `json:"note,omitempty"` // a line under the label, e.g. an address
	// Width is the box's smallest width where its kind's is too wide for
	// its place, as in a row of narrow columns; the box still widens to
	// fit its label and badges. 0 keeps the kind's.
	Width float64 `json:"width,omitempty"`
}

// Edge joins two nodes; messages move along it.
type Edge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Label string `json:"label,omitempty"`
}

// Stats is a scenario's live state: exact counters, the state drawn on each
// node, the ledger and the newest chart point.
type Stats struct {
	Nodes    map[string]NodeState `json:"nodes"`
	Counters []Counter            `json:"counters"`
	Ledger   Ledger               `json:"ledger"`
	Series   Point                `json:"series"`
}

// NodeState is a node's state: its state word (up, down, slow, open, …),
// which the diagram shows on the node, and its facts, each a typed value a
// program reads and maybe a badge such as "in flight 37" the diagram draws.
type NodeState struct {
	State string `json:"state"`
	Facts []Fact `json:"facts"`
}

// Counter is one exact number shown under the diagram.
type Counter struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Value int64  `json:"value"`
}

// Ledger accounts for every message: Total = the sum of Parts. Duplicates are
// counted apart, never in the sum.
type Ledger struct {
	Total      Counter   `json:"total"`
	Parts      []Counter `json:"parts"`
	Duplicates *Counter  `json:"duplicates,omitempty"`
}

// Balanced reports whether the parts add up to the total.
func (l Ledger) Balanced() bool {
	var sum int64
	for _, p := range l.Parts {
		sum += p.Value
	}
	return sum == l.Total.Value
}

// Point is one sample of the live chart, taken once a second.
type Point struct {
	Time       time.Time `json:"t"`
	Throughput float64   `json:"throughput"` // completed per second
	Success    float64   `json:"success"`    // percent of completed that succeeded
	P50MS      float64   `json:"p50"`
	P99MS      float64   `json:"p99"`
	Depth      float64   `json:"depth,omitempty"` // queue depth or lag
}

// Tearer is a scenario that can delete what its lab made outside flowlab:
// the exchanges, queues, topics and consumer groups on its broker. Call
// Teardown only after Run has returned, and only on purpose (a reset): the
// default lab's objects bear the article's names, which a learner's own
// clients may share, so stopping flowlab never calls it.
type Tearer interface {
	Teardown(ctx context.Context) error
}
