package reqresp_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"flowlab/flow"
)

func TestBadKnobValuesChangeNothing(t *testing.T) {
	l := mustRun(t, nil)
	before := l.Knobs()
	eventsBefore := len(l.events.all())

	viaCommand := []struct {
		knob, raw string
		kind      flow.ErrorKind
	}{
		{"rate", `500`, flow.Invalid},
		{"rate", `-1`, flow.Invalid},
		{"rate", `2.5`, flow.Invalid},
		{"rate", `"fast"`, flow.Invalid},
		{"timeout_ms", `10`, flow.Invalid}, // below 50, and not 0 ("none")
		{"up", `"yes"`, flow.Invalid},
		{"retry", `"sometimes"`, flow.Invalid},
		{"errors", `null`, flow.Invalid},
		{"speed", `1`, flow.NotFound},
	}
	for _, c := range viaCommand {
		err := flow.SetKnob(l, c.knob, json.RawMessage(c.raw))
		if flow.KindOf(err) != c.kind {
			t.Errorf("SetKnob(%s, %s) = %v, want a %s error", c.knob, c.raw, err, c.kind)
		}
	}
	direct := []struct {
		knob  string
		value any
		kind  flow.ErrorKind
	}{
		{"rate", "10", flow.Invalid},
		{"up", 1, flow.Invalid},
		{"errors", true, flow.Invalid},
		{"latency_ms", 9000, flow.Invalid},
		{"breaker", nil, flow.Invalid},
		{"speed", 1, flow.NotFound},
	}
	for _, c := range direct {
		if err := l.Set(c.knob, c.value); flow.KindOf(err) != c.kind {
			t.Errorf("Set(%s, %#v) = %v, want a %s error", c.knob, c.value, err, c.kind)
		}
	}

	if after := l.Knobs(); !reflect.DeepEqual(before, after) {
		t.Errorf("knobs changed by refused values:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := len(l.events.all()); n != eventsBefore {
		t.Errorf("refused values emitted %d events", n-eventsBefore)
	}
}

func TestSetEmitsTheNewValue(t *testing.T) {
	l := mustRun(t, nil)
	mustSet(t, l, "timeout_ms", 0) // 0 is "none"
	mustSet(t, l, "timeout_ms", 750)
	var last flow.Event
	for _, e := range l.events.all() {
		if e.Kind == flow.KindState && e.Detail.Knob != "" {
			last = e
		}
	}
	if last.Detail.Knob != "timeout_ms" || last.Detail.Value != 750 {
		t.Errorf("last knob event = %+v, want timeout_ms = 750", last)
	}
	if v := knobValue(t, l, "timeout_ms"); v != 750 {
		t.Errorf("timeout_ms = %v, want 750", v)
	}
}

func TestPresetsSetThePolicy(t *testing.T) {
	l := mustRun(t, nil)
	want := map[string]map[string]any{
		"resilient": {"timeout_ms": 500, "retry": "exponential", "max_attempts": 3, "breaker": true, "errors": "raise"},
		"article":   {"timeout_ms": 0, "retry": "none", "breaker": false, "errors": "swallow"},
	}
	for knob, v := range want["article"] {
		if got := knobValue(t, l, knob); got != v {
			t.Errorf("default %s = %v, want the article's %v", knob, got, v)
		}
	}
	for _, preset := range []string{"resilient", "article"} {
		if err := flow.ApplyPreset(l, preset); err != nil {
			t.Fatalf("preset %s: %v", preset, err)
		}
		for knob, v := range want[preset] {
			if got := knobValue(t, l, knob); got != v {
				t.Errorf("after %s: %s = %v, want %v", preset, knob, got, v)
			}
		}
	}
	if got := l.events.states("breaker"); len(got) < 2 || got[len(got)-2] != "closed" || got[len(got)-1] != "off" {
		t.Errorf("breaker states %v, want closed by resilient, then off by the article", got)
	}
}

func knobValue(tb testing.TB, s flow.Scenario, name string) any {
	tb.Helper()
	k, err := flow.FindKnob(s, name)
	if err != nil {
		tb.Fatal(err)
	}
	return k.Value
}

// Each preset sets every knob it names, whatever was set before, and leaves
// the knobs it does not name alone.
func TestEveryPresetSetsEveryKnobItNames(t *testing.T) {
	l := mustRun(t, nil)
	for _, p := range l.Presets() {
		for _, other := range l.Presets() {
			if err := flow.ApplyPreset(l, other.Name); err != nil {
				t.Fatalf("preset %s: %v", other.Name, err)
			}
			mustSet(t, l, "latency_ms", 250) // named by no preset
			if err := flow.ApplyPreset(l, p.Name); err != nil {
				t.Fatalf("preset %s: %v", p.Name, err)
			}
			for knob, v := range p.Values {
				if got := knobValue(t, l, knob); got != v {
					t.Errorf("%s after %s: %s = %v, want %v", p.Name, other.Name, knob, got, v)
				}
			}
			if got := knobValue(t, l, "latency_ms"); got != 250 {
				t.Errorf("%s after %s: latency_ms = %v, want 250 as it was", p.Name, other.Name, got)
			}
		}
	}
}
