package eventdriven_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/eventdriven"
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
// knob's current value passes its own declaration.
func TestPresetsAndKnobsAreConsistent(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	for _, k := range l.Knobs() {
		if k.Type == flow.ActionKnob {
			continue
		}
		if err := rabbittest.Set(l, k.Name, k.Value); err != nil {
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

// mustOpen opens the scenario without running its services: knobs and
// presets can be set, and nothing is sent. Cleanup frees what Open took.
func mustOpen(tb testing.TB) *eventdriven.Scenario {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	s, err := eventdriven.Open(eventdriven.Config{AMQPURL: rabbittest.URL(), Lab: l, Emit: flow.NewEmitter(l, eventdriven.Name, &rabbittest.Sink{})})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Run(ctx)
	})
	return s
}

// "Send 100 orders" adds to a backlog with a bound: a press that would take
// it past the bound is refused with a clear error and changes nothing.
func TestSendBacklogIsCapped(t *testing.T) {
	rabbittest.CheckBacklogCap(t, mustOpen(t), eventdriven.MaxBacklog)
}

// After "Reliable" then "As in the article", poison handling is back on
// requeue and can be set again, as in a fresh lab.
func TestReliableThenArticleResetsPoisonHandling(t *testing.T) {
	s := mustOpen(t)
	mustApply(t, s, "reliable")
	mustApply(t, s, "article")
	if k, _ := flow.FindKnob(s, "dlq.poison-handling"); k.Value != "requeue" {
		t.Errorf("poison handling %v after reliable then article, want requeue", k.Value)
	}
	rabbittest.MustSet(t, s, "dlq.poison-handling", "requeue")
	mustApply(t, s, "reliable")
	rabbittest.MustSet(t, s, "dlq.poison-handling", "requeue")
	if k, _ := flow.FindKnob(s, "dlq.poison-handling"); k.Value != "requeue" {
		t.Errorf("poison handling %v after setting it to requeue under reliable", k.Value)
	}
}

// Applying preset A and then B leaves every knob as a fresh apply of B does,
// for every pair of presets, even after the learner changed what A set.
func TestPresetsRoundTrip(t *testing.T) {
	rabbittest.CheckPresetsRoundTrip(t, func(tb testing.TB) flow.Scenario { return mustOpen(tb) },
		func(tb testing.TB, s flow.Scenario) {
			for _, c := range consumers {
				rabbittest.MustSet(tb, s, c+".prefetch", 50)
			}
		})
}

// Prefetch set under auto-ack is kept for when the ack mode turns manual, and
// does not make the running consumer subscribe again (which, with auto-ack,
// would lose what it holds).
func TestPrefetchUnderAutoAckKeepsTheSubscription(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	changes := func() int {
		return l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindState && e.From == "email" })
	}
	before := changes()
	rabbittest.MustSet(t, l, "email.prefetch", 20)
	time.Sleep(300 * time.Millisecond)
	if after := changes(); after != before {
		t.Errorf("email changed state %d times after a prefetch change under auto-ack", after-before)
	}
	rabbittest.MustSet(t, l, "email.ack", "manual")
	rabbittest.WaitFor(t, l, 10*time.Second, "email on manual ack with the prefetch set before", func(st flow.Stats) bool {
		return word(st.Nodes["email"], "ack-mode") == "manual" && count(st.Nodes["email"], "prefetch") == 20
	})
}

// presetBoard is the scenario with presets of the test's own.
type presetBoard struct {
	*eventdriven.Scenario
	presets []flow.Preset
}

func (p presetBoard) Presets() []flow.Preset { return p.presets }

// A preset is checked whole before any of it applies, and one the scenario
// refuses part-way (poison to the DLQ while every consumer acks
// automatically) leaves every knob as it was, and says which knob refused.
func TestRefusedPresetChangesNothing(t *testing.T) {
	s := presetBoard{Scenario: mustOpen(t), presets: []flow.Preset{
		{Name: "unknown", Values: map[string]any{"order-service.confirms": true, "order-service.colour": 1}},
		{Name: "range", Values: map[string]any{"order-service.confirms": true, "email.prefetch": 1001}},
		{Name: "mode", Label: "DLQ", Values: map[string]any{"order-service.confirms": true, "order-service.rate": 7, "dlq.poison-handling": "dead-letter"}},
	}}
	before := s.Knobs()
	for _, c := range []struct {
		preset string
		kind   flow.ErrorKind
		says   string
	}{
		{"unknown", flow.NotFound, `"order-service.colour"`},
		{"range", flow.Invalid, "from 1 to 1000"},
		{"mode", flow.Invalid, "Poison handling refused"},
	} {
		err := flow.ApplyPreset(s, c.preset)
		if flow.KindOf(err) != c.kind || !strings.Contains(flow.MessageOf(err), c.says) {
			t.Errorf("preset %s: %v, want a %s error saying %s", c.preset, err, c.kind, c.says)
		}
		if after := s.Knobs(); !reflect.DeepEqual(before, after) {
			t.Errorf("preset %s refused, yet it changed the knobs:\nbefore %+v\nafter  %+v", c.preset, before, after)
		}
	}
}
