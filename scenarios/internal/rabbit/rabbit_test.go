package rabbit_test

import (
	"errors"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
	"flowlab/scenarios/internal/rabbittest"
)

// mustOpen opens a broker whose path leads nowhere: nothing here dials.
func mustOpen(tb testing.TB, url string) (*rabbit.Broker, *rabbittest.Sink) {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	sink := &rabbittest.Sink{}
	b, err := rabbit.Open(rabbit.Config{URL: url, Path: "test", Node: "broker-node", Title: "Test", Emit: flow.NewEmitter(l, "test", sink)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b, sink
}

func TestOpenHidesCredentials(t *testing.T) {
	b, _ := mustOpen(t, "amqp://user:secret@127.0.0.1:1/lab")
	if b.Name != "amqp://127.0.0.1:1/lab" {
		t.Errorf("Name %q, want the address and vhost without credentials", b.Name)
	}
	if _, err := rabbit.Open(rabbit.Config{URL: "http://nowhere", Path: "test"}); flow.KindOf(err) != flow.Invalid {
		t.Errorf("a URL that is not AMQP: %v, want an invalid error", err)
	}
}

// A status emits a state event on every change and on nothing else; a
// service that is unreachable stays so while it tries again.
func TestStatusEmitsChangesOnly(t *testing.T) {
	b, sink := mustOpen(t, "")
	s := b.NewStatus("svc", "starting")
	s.Set("connecting", nil)
	s.Set("connecting", nil)
	s.Set("unreachable", errors.New("dial tcp: connection refused"))
	s.Set("connecting", nil)
	if st, err := s.Get(); st != "unreachable" || err != "dial tcp: connection refused" {
		t.Errorf("status %q (%q), want unreachable with the dial error", st, err)
	}
	var states []string
	for _, e := range sink.Events() {
		states = append(states, e.Detail.State)
	}
	if len(states) != 2 || states[0] != "connecting" || states[1] != "unreachable" {
		t.Errorf("state events %v, want [connecting unreachable]", states)
	}
}

// The path's knobs refuse what does not apply now, and a service that loses
// the broker after a cut says how long it took to notice.
func TestPathKnobs(t *testing.T) {
	b, sink := mustOpen(t, "")
	for _, c := range []struct {
		name  string
		value any
		kind  flow.ErrorKind
	}{
		{"restore", nil, flow.Invalid},
		{"latency", "slow", flow.Invalid},
		{"colour", nil, flow.NotFound},
	} {
		if err := b.Set(c.name, c.value); flow.KindOf(err) != c.kind {
			t.Errorf("broker.%s = %v: %v, want a %s error", c.name, c.value, err, c.kind)
		}
	}
	// The range is the declaration's: flow.SetKnob parses against it
	// before Set.
	for _, k := range b.Knobs() {
		if _, err := k.Parse([]byte("5001")); k.Name == "broker.latency" && flow.KindOf(err) != flow.Invalid {
			t.Errorf("broker.latency = 5001: %v, want an invalid error", err)
		}
	}
	s := b.NewStatus("svc", "up")
	if err := b.Set("cut", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("silence", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("silencing a cut path: %v", err)
	}
	time.Sleep(time.Millisecond)
	s.Set("reconnecting", errors.New("connection reset"))
	if !rabbittest.HasBadge(flow.NodeState{Facts: b.PathFacts()}, "cut") {
		t.Errorf("facts %v while cut", b.PathFacts())
	}
	noticed := sink.Count(func(e flow.Event) bool { return e.From == "svc" && e.Detail.LatencyMS >= 1 })
	cuts := sink.Count(func(e flow.Event) bool { return e.From == "broker-node" && e.Detail.Knob == "broker.cut" })
	if noticed != 1 || cuts != 1 {
		t.Errorf("%d cut events and %d state events with the time to notice, want 1 each", cuts, noticed)
	}
	if err := b.Set("restore", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("latency", 20); err != nil {
		t.Fatal(err)
	}
	for _, k := range b.Knobs() {
		if k.Name == "broker.latency" && k.Value != 20 {
			t.Errorf("latency knob %v after setting 20", k.Value)
		}
	}
}
