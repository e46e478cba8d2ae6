package flow

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// KnobType says what values a knob takes and how the page draws it.
type KnobType string

const (
	IntKnob    KnobType = "int"    // a whole number in [Min, Max], or 0 when Off names it
	BoolKnob   KnobType = "bool"   // a switch
	ChoiceKnob KnobType = "choice" // one of Choices
	ActionKnob KnobType = "action" // a button: no value
)

// Knob is the declaration of one control, and its current value.
type Knob struct {
	Name    string   `json:"name"`
	Group   string   `json:"group"` // the node it belongs to, e.g. product-service
	Label   string   `json:"label"`
	Help    string   `json:"help,omitempty"`
	Type    KnobType `json:"type"`
	Min     int      `json:"min,omitempty"`
	Max     int      `json:"max,omitempty"`
	Step    int      `json:"step,omitempty"`
	Unit    string   `json:"unit,omitempty"`
	Off     string   `json:"off,omitempty"` // for IntKnob: 0 is allowed and means this
	Choices []Choice `json:"choices,omitempty"`
	Value   any      `json:"value"` // int, bool or string; nil for actions
}

// Choice is one option of a ChoiceKnob.
type Choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// Parse checks raw against the declaration and returns the value to give Set:
// an int, a bool, a string, or nil for an action.
func (k Knob) Parse(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	null := len(raw) == 0 || string(raw) == "null"
	switch k.Type {
	case ActionKnob:
		if !null {
			return nil, Errorf(Invalid, "%s is a button: it takes no value", k.Label)
		}
		return nil, nil
	case BoolKnob:
		var b bool
		if null || json.Unmarshal(raw, &b) != nil {
			return nil, Errorf(Invalid, "%s takes true or false", k.Label)
		}
		return b, nil
	case ChoiceKnob:
		var s string
		if null || json.Unmarshal(raw, &s) != nil {
			return nil, Errorf(Invalid, "%s takes one of %s", k.Label, k.choiceList())
		}
		for _, c := range k.Choices {
			if c.Value == s {
				return s, nil
			}
		}
		return nil, Errorf(Invalid, "%s has no option %q: pick one of %s", k.Label, s, k.choiceList())
	case IntKnob:
		// Only a plain integer literal: a float would take 1e-400 as 0 and
		// round a huge number.
		n, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
		if null || err != nil || raw[0] == '+' || !json.Valid(raw) {
			return nil, Errorf(Invalid, "%s takes a whole number %s", k.Label, k.rangeText())
		}
		if n == 0 && k.Off != "" {
			return 0, nil
		}
		if n < int64(k.Min) || n > int64(k.Max) {
			return nil, Errorf(Invalid, "%s must be %s, not %d", k.Label, k.rangeText(), n)
		}
		return int(n), nil
	}
	return nil, Errorf(Internal, "knob %s has unknown type %q", k.Name, k.Type)
}

// Typed returns a value Knob.Parse gave for knob as the T its declaration
// takes. A scenario's Set uses it instead of checking the range again: the
// declaration is the one place a knob's type and range are said. Any other
// value is a caller's mistake and refused.
func Typed[T any](knob string, value any) (T, error) {
	v, ok := value.(T)
	if !ok {
		var zero T
		return zero, Errorf(Invalid, "%s takes a %T, not %v", knob, zero, value)
	}
	return v, nil
}

func (k Knob) rangeText() string {
	s := fmt.Sprintf("from %d to %d", k.Min, k.Max)
	if k.Unit != "" {
		s += " " + k.Unit
	}
	if k.Off != "" {
		s += fmt.Sprintf(" (or 0 for %s)", k.Off)
	}
	return s
}

func (k Knob) choiceList() string {
	var b bytes.Buffer
	for i, c := range k.Choices {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", c.Value)
	}
	return b.String()
}

// Preset is a named set of knob values applied together.
type Preset struct {
	Name   string         `json:"name"`
	Label  string         `json:"label"`
	Help   string         `json:"help,omitempty"`
	Values map[string]any `json:"values"`
}

// FindKnob returns the declaration named name.
func FindKnob(s Scenario, name string) (Knob, error) {
	for _, k := range s.Knobs() {
		if k.Name == name {
			return k, nil
		}
	}
	return Knob{}, Errorf(NotFound, "%s has no knob %q", s.Title(), name)
}

// SetKnob validates raw against the knob's declaration and sets it; on any
// error nothing is changed.
func SetKnob(s Scenario, name string, raw json.RawMessage) error {
	k, err := FindKnob(s, name)
	if err != nil {
		return err
	}
	v, err := k.Parse(raw)
	if err != nil {
		return err
	}
	return s.Set(name, v)
}

// ApplyPreset parses every value of the preset against the declarations
// before it sets any, so a preset naming an unknown knob or a bad value
// changes nothing. If a scenario's Set then refuses one (a knob that does not
// apply in the current mode), the knobs already set are set back to what they
// were, and the error says what happened.
func ApplyPreset(s Scenario, name string) error {
	i := slices.IndexFunc(s.Presets(), func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Errorf(NotFound, "%s has no preset %q", s.Title(), name)
	}
	p := s.Presets()[i]
	vals := make(map[string]any, len(p.Values))
	for kn, v := range p.Values {
		k, err := FindKnob(s, kn)
		if err != nil {
			return Errorf(KindOf(err), "preset %s: %s", p.Name, MessageOf(err))
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return Errorf(Internal, "preset %s: %v", p.Name, err)
		}
		if vals[kn], err = k.Parse(raw); err != nil {
			return Errorf(KindOf(err), "preset %s: %s", p.Name, MessageOf(err))
		}
	}
	var done []Knob               // with the values they had
	for _, k := range s.Knobs() { // declaration order, so dependent knobs apply sensibly
		v, ok := vals[k.Name]
		if !ok {
			continue
		}
		if err := s.Set(k.Name, v); err != nil {
			return undoPreset(s, p, done, k, err)
		}
		done = append(done, k)
	}
	return nil
}

// undoPreset sets back, newest first, the knobs a preset had set before Set
// refused k, and says what the preset left.
func undoPreset(s Scenario, p Preset, done []Knob, k Knob, err error) error {
	var kept []string
	for i := len(done) - 1; i >= 0; i-- {
		if done[i].Type == ActionKnob || s.Set(done[i].Name, done[i].Value) != nil {
			kept = append(kept, done[i].Label)
		}
	}
	slices.Reverse(kept)
	title := cmp.Or(p.Label, p.Name)
	switch {
	case KindOf(err) == Internal: // logged, not shown
		return fmt.Errorf("preset %s: %s: %w (kept the preset's values: %v)", title, k.Name, err, kept)
	case len(kept) == 0:
		return Errorf(KindOf(err), "preset %s was not applied: %s refused its value (%s); every knob is as it was", title, k.Label, MessageOf(err))
	}
	return Errorf(KindOf(err), "preset %s stopped part-way: %s refused its value (%s); %s kept the preset's values, as they could not be set back", title, k.Label, MessageOf(err), strings.Join(kept, ", "))
}
