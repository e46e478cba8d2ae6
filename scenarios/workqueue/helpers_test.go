package workqueue_test

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/scenarios/workqueue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var workers = []string{"worker-1", "worker-2", "worker-3"}

type lab struct {
	*workqueue.Scenario
	lab  *flow.Lab
	sink *rabbittest.Sink
}

// MustStart runs the scenario in a fresh lab, paused, sending never failing
// and instantly, and at cleanup stops it and deletes every queue it declared.
func MustStart(tb testing.TB, url string) *lab {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	sk := &rabbittest.Sink{}
	s, err := workqueue.Open(workqueue.Config{AMQPURL: url, Lab: l, Emit: flow.NewEmitter(l, workqueue.Name, sk)})
	if err != nil {
		tb.Fatal(err)
	}
	lb := &lab{Scenario: s, lab: l, sink: sk}
	rabbittest.MustSet(tb, lb, "order-service.rate", 0)
	rabbittest.MustSet(tb, lb, "emails.failure", 0)
	rabbittest.MustSet(tb, lb, "emails.processing", 0)
	tb.Cleanup(func() { deleteTopology(tb, url, l) })
	rabbittest.Run(tb, s.Run)
	return lb
}

func deleteTopology(tb testing.TB, url string, l *flow.Lab) {
	queues := []string{l.Name("emails")}
	for a := 1; a < 10; a++ {
		queues = append(queues, l.Name(fmt.Sprintf("emails.retry.%d", a)))
	}
	queues = append(queues, l.Name("emails.dlq"))
	rabbittest.DeleteTopology(tb, url, queues, []string{l.Name("emails.dlx")})
}
