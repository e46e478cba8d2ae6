package eventdriven_test

import (
	"testing"

	"flowlab/flow"
	"flowlab/scenarios/eventdriven"
	"flowlab/scenarios/internal/rabbittest"
)

// With durable queues and orders flowing, Teardown leaves the broker holding
// nothing of the lab, and everything of another lab.
func TestTeardownDeletesTheLabsTopology(t *testing.T) {
	url := rabbittest.URL()
	open := func(tb testing.TB, l *flow.Lab) flow.Scenario {
		s, err := eventdriven.Open(eventdriven.Config{AMQPURL: url, Lab: l, Emit: flow.NewEmitter(l, eventdriven.Name, &rabbittest.Sink{})})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { deleteTopology(tb, url, l) })
		return s
	}
	load := func(tb testing.TB, s flow.Scenario) {
		if err := flow.ApplyPreset(s, "reliable"); err != nil {
			tb.Fatal(err)
		}
		rabbittest.MustSet(tb, s, "order-service.rate", 20)
	}
	want := func(l *flow.Lab) []string {
		held := []string{"exchange " + l.Name("ecommerce"), "exchange " + l.Name("ecommerce.dlx"), "queue " + l.Name("ecommerce.dlq")}
		for _, c := range consumers {
			held = append(held, "queue "+l.Name("ecommerce."+c))
		}
		return held
	}
	rabbittest.CheckTeardown(t, open, load, want)
}
