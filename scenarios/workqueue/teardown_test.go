package workqueue_test

import (
	"fmt"
	"testing"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/scenarios/workqueue"
)

// With jobs failing and retrying, Teardown leaves the broker holding nothing
// of the lab, and everything of another lab.
func TestTeardownDeletesTheLabsTopology(t *testing.T) {
	url := rabbittest.URL()
	open := func(tb testing.TB, l *flow.Lab) flow.Scenario {
		s, err := workqueue.Open(workqueue.Config{AMQPURL: url, Lab: l, Emit: flow.NewEmitter(l, workqueue.Name, &rabbittest.Sink{})})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { deleteTopology(tb, url, l) })
		return s
	}
	load := func(tb testing.TB, s flow.Scenario) {
		rabbittest.MustSet(tb, s, "emails.failure", 50)
		rabbittest.MustSet(tb, s, "order-service.rate", 20)
	}
	want := func(l *flow.Lab) []string {
		held := []string{"queue " + l.Name("emails"), "queue " + l.Name("emails.dlq"), "exchange " + l.Name("emails.dlx")}
		for a := 1; a < 10; a++ {
			held = append(held, "queue "+l.Name(fmt.Sprintf("emails.retry.%d", a)))
		}
		return held
	}
	rabbittest.CheckTeardown(t, open, load, want)
}
