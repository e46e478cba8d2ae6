package eventdriven_test

import (
	"reflect"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// Bad input is refused with a clear error of the right kind, and changes
// nothing at all.
func TestBadInputChangesNothing(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "stopped" })
	before := l.Knobs()

	cases := []struct {
		knob  string
		value any
		kind  flow.ErrorKind
	}{
		{"shipping.stop", nil, flow.NotFound},
		{"inventory.colour", "red", flow.NotFound},
		{"order-service.rate", 501, flow.Invalid},
		{"order-service.rate", -1, flow.Invalid},
		{"order-service.rate", 2.5, flow.Invalid},
		{"order-service.rate", "fast", flow.Invalid},
		{"order-service.poison", 101, flow.Invalid},
		{"order-service.connection", "pooled", flow.Invalid},
		{"email.processing", 5001, flow.Invalid},
		{"email.queue", "lazy", flow.Invalid},
		{"email.ack", true, flow.Invalid},
		{"email.stop", "now", flow.Invalid},
		// Knobs that exist but do not apply now.
		{"email.prefetch", 10, flow.Invalid},                 // auto-ack has no prefetch
		{"dlq.poison-handling", "dead-letter", flow.Invalid}, // nobody acks manually
		{"inventory.stop", nil, flow.Invalid},                // already stopped
		{"inventory.crash", nil, flow.Invalid},               // not running
		{"broker.restore", nil, flow.Invalid},                // not cut
	}
	for _, c := range cases {
		err := rabbittest.Set(l, c.knob, c.value)
		if err == nil {
			t.Errorf("%s = %v accepted", c.knob, c.value)
			continue
		}
		if flow.KindOf(err) != c.kind || flow.MessageOf(err) == "internal error" {
			t.Errorf("%s = %v: %v error %q, want a %v error meant for a person", c.knob, c.value, flow.KindOf(err), err, c.kind)
		}
	}
	rabbittest.MustSet(t, l, "email.ack", "manual")
	if err := rabbittest.Set(l, "email.prefetch", 0); flow.KindOf(err) != flow.Invalid {
		t.Errorf("prefetch 0: %v", err)
	}
	if err := rabbittest.Set(l, "email.prefetch", 1001); flow.KindOf(err) != flow.Invalid {
		t.Errorf("prefetch 1001: %v", err)
	}
	rabbittest.MustSet(t, l, "email.ack", "auto")
	if after := l.Knobs(); !reflect.DeepEqual(before, after) {
		t.Errorf("refused commands changed the knobs:\nbefore %+v\nafter  %+v", before, after)
	}
	if err := flow.ApplyPreset(l, "fastest"); flow.KindOf(err) != flow.NotFound {
		t.Errorf("unknown preset: %v", err)
	}
	if st := l.Stats(); st.Nodes["inventory"].State != "stopped" {
		t.Errorf("inventory is %s after refused commands, want still stopped", st.Nodes["inventory"].State)
	}
}

// Every knob named in a preset exists and takes the preset's value, and each
// knob's current value passes its own declaration (prefetch and poison
// handling apply only with manual ack, which the article's setup lacks).
func TestPresetsAndKnobsAreConsistent(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	notInArticle := map[string]bool{"dlq.poison-handling": true}
	for _, c := range consumers {
		notInArticle[c+".prefetch"] = true
	}
	for _, k := range l.Knobs() {
		if k.Type == flow.ActionKnob {
			continue
		}
		err := rabbittest.Set(l, k.Name, k.Value)
		if err != nil && !(notInArticle[k.Name] && flow.KindOf(err) == flow.Invalid) {
			t.Errorf("knob %s refuses its own value %v: %v", k.Name, k.Value, err)
		}
	}
	for _, p := range l.Presets() {
		mustApply(t, l, p.Name)
		for _, k := range l.Knobs() {
			if v, ok := p.Values[k.Name]; ok && !reflect.DeepEqual(k.Value, v) {
				t.Errorf("after preset %s, %s = %v, want %v", p.Name, k.Name, k.Value, v)
			}
		}
	}
}
