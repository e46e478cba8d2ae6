// Package web renders flowlab's pages with templ. Components only render:
// handlers fetch what a page needs and pass it in as plain values.
package web

import (
	"fmt"
	"strconv"
	"strings"

	"flowlab/flow"
)

//go:generate go tool templ generate

// Page is everything the scenario page shows before its websocket connects.
type Page struct {
	Lab      string
	Sandbox  bool // the lab was made by "New sandbox": the page names it
	Watching bool // someone else's sandbox: the page may watch it, its controls are disabled
	Scenario string
	Broker   string // the broker this pattern needs: its state is shown as a banner when it does not answer
	Title    string
	Summary  string
	Tabs     []Tab
	Knobs    []flow.Knob
	Presets  []flow.Preset
	Brokers  []Broker
	Show     *Lesson    // asked for by ?show=: its controls are highlighted, its words shown
	Walk     *WalkPanel // the walkthrough the lab runs on this pattern, or nil
	Walks    []WalkLink // the walkthroughs of this pattern, each started in a fresh sandbox
	Present  Present    // presenter mode, as ?present= and ?spotlight= ask
	// Shortcuts are the keys of presenter mode: the pattern's main failures.
	Shortcuts []Shortcut
}

// Tab links to one pattern in the same lab.
type Tab struct {
	Title   string
	Href    string
	Current bool
}

// Broker is one broker's state in the header.
type Broker struct {
	Name     string
	OK       bool
	Starting bool // flowlab's private node is on its way
	Where    string
	Status   string
}

// KnobGroup is the knobs of one node, in declaration order.
type KnobGroup struct {
	Name  string
	Knobs []flow.Knob
}

// groups keeps the declaration order of groups and of knobs within them.
func groups(knobs []flow.Knob) []KnobGroup {
	var out []KnobGroup
	index := map[string]int{}
	for _, k := range knobs {
		i, ok := index[k.Group]
		if !ok {
			i = len(out)
			index[k.Group] = i
			out = append(out, KnobGroup{Name: k.Group})
		}
		out[i].Knobs = append(out[i].Knobs, k)
	}
	return out
}

// switches are the bool knobs named "up": each gets a big take-it-down button
// above the diagram, the failure a learner tries first.
func switches(knobs []flow.Knob) []flow.Knob {
	var out []flow.Knob
	for _, k := range knobs {
		if k.Type == flow.BoolKnob && (k.Name == "up" || strings.HasSuffix(k.Name, ".up")) {
			out = append(out, k)
		}
	}
	return out
}

func intOf(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

func boolOf(v any) bool { b, _ := v.(bool); return b }

func strOf(v any) string { s, _ := v.(string); return s }

// sliderMin lets a knob with an Off value slide down to 0, which means off.
func sliderMin(k flow.Knob) int {
	if k.Off != "" {
		return 0
	}
	return k.Min
}

func step(k flow.Knob) int {
	if k.Step > 0 {
		return k.Step
	}
	return 1
}

// valueText is a knob's current value as the page shows it.
func valueText(k flow.Knob) string {
	n := intOf(k.Value)
	if n == 0 && k.Off != "" {
		return k.Off
	}
	if k.Unit != "" {
		return fmt.Sprintf("%d %s", n, k.Unit)
	}
	return strconv.Itoa(n)
}

func switchLabel(k flow.Knob) string {
	node := k.Group
	if boolOf(k.Value) {
		return "Take " + node + " down"
	}
	return "Bring " + node + " back up"
}

func brokerClass(b Broker) string {
	switch {
	case b.OK:
		return "pill ok"
	case b.Starting:
		return "pill"
	}
	return "pill bad"
}

func brokerText(b Broker) string {
	switch {
	case b.OK:
		return b.Name + " up"
	case b.Starting:
		return b.Name + " starting…"
	}
	return b.Name + " not answering"
}
