package workqueue_test

import (
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// A job published into a black hole is never confirmed. After the restore
// order-service publishes it again, so the ledger settles with nothing lost;
// if the broker had it after all, a worker gets it twice: a duplicate,
// counted.
func TestSilencedUnconfirmedJobIsSentAgain(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	services := append([]string{"order-service"}, workers...)
	rabbittest.MustSet(t, l, "order-service.rate", 20)
	rabbittest.WaitFor(t, l, 10*time.Second, "jobs flowing", func(st flow.Stats) bool {
		return rabbittest.AllUp(services...)(st) && rabbittest.Counter(st, "acked") > 10
	})
	rabbittest.MustSet(t, l, "broker.silence", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "order-service to notice the silence", func(st flow.Stats) bool {
		return st.Nodes["order-service"].State != "up"
	})
	rabbittest.MustSet(t, l, "broker.restore", nil)
	rabbittest.WaitFor(t, l, 15*time.Second, "every service back", rabbittest.AllUp(services...))
	rabbittest.MustSet(t, l, "order-service.rate", 0)
	st := rabbittest.WaitFor(t, l, 20*time.Second, "no job in flight", func(st flow.Stats) bool {
		for _, p := range st.Ledger.Parts {
			if p.Name == "in-flight" {
				return p.Value == 0
			}
		}
		return false
	})
	rabbittest.MustBalance(t, st)
	t.Logf("%s", rabbittest.Describe(st))
	if got, want := rabbittest.Counter(st, "acked"), rabbittest.Counter(st, "published"); got != want {
		t.Errorf("%d of %d jobs sent, want every one", got, want)
	}
	again := l.sink.Count(func(e flow.Event) bool {
		return e.Kind == flow.KindPublish && strings.Contains(e.Detail.Outcome, "again")
	})
	if again < 1 {
		t.Errorf("no job was published again after the silence")
	}
}
