package workqueue_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/scenarios/workqueue"
)

// mustOpen opens the scenario without running its services: knobs and
// presets can be set, and nothing is sent. Cleanup frees what Open took.
func mustOpen(tb testing.TB) *workqueue.Scenario {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	s, err := workqueue.Open(workqueue.Config{AMQPURL: rabbittest.URL(), Lab: l, Emit: flow.NewEmitter(l, workqueue.Name, &rabbittest.Sink{})})
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
	s := mustOpen(t)
	presses := workqueue.MaxBacklog / 100
	for range presses {
		rabbittest.MustSet(t, s, "order-service.send-100", nil)
	}
	want := fmt.Sprintf("%d waiting to be sent", workqueue.MaxBacklog)
	if ns := s.Stats().Nodes["order-service"]; !rabbittest.HasBadge(ns, want) {
		t.Fatalf("after %d presses order-service shows %v, want %q", presses, ns.Badges, want)
	}
	err := rabbittest.Set(s, "order-service.send-100", nil)
	if flow.KindOf(err) != flow.Invalid || !strings.Contains(flow.MessageOf(err), fmt.Sprint(workqueue.MaxBacklog)) {
		t.Errorf("a press past the cap: %v, want an invalid error naming the cap", err)
	}
	if ns := s.Stats().Nodes["order-service"]; !rabbittest.HasBadge(ns, want) {
		t.Errorf("a refused press changed the backlog: %v", ns.Badges)
	}
}

// Applying preset A and then B leaves every knob as a fresh apply of B does,
// for every pair of presets, even after the learner changed what A set.
func TestPresetsRoundTrip(t *testing.T) {
	for _, a := range mustOpen(t).Presets() {
		for _, b := range mustOpen(t).Presets() {
			fresh := mustOpen(t)
			mustApply(t, fresh, b.Name)
			after := mustOpen(t)
			mustApply(t, after, a.Name)
			rabbittest.MustSet(t, after, "emails.max-attempts", 7)
			mustApply(t, after, b.Name)
			want, got := fresh.Knobs(), after.Knobs()
			for i := range want {
				if !reflect.DeepEqual(want[i].Value, got[i].Value) {
					t.Errorf("%s then %s: %s = %v, a fresh %s gives %v", a.Name, b.Name, got[i].Name, got[i].Value, b.Name, want[i].Value)
				}
			}
		}
	}
}

func mustApply(tb testing.TB, s flow.Scenario, preset string) {
	tb.Helper()
	if err := flow.ApplyPreset(s, preset); err != nil {
		tb.Fatalf("preset %s: %v", preset, err)
	}
}
