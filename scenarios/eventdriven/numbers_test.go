package eventdriven_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/eventdriven"
	"flowlab/scenarios/internal/rabbittest"
)

// Every number on the page agrees with every other: the ledger's total is
// the published counter times the consumers and its label quotes that
// counter; each part is the sum of the consumers' counters of that name; the
// duplicates apart are the duplicates counter.
func TestLedgerAgreesWithTheCounters(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool { return st.Nodes["queue-inventory"].State == "absent" })
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 published and settled", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "published") == 100 && part(st, "in-flight") == 0
	})
	published := rabbittest.Counter(st, "published")
	if st.Ledger.Total.Value != published*int64(len(consumers)) {
		t.Errorf("ledger total %d, want %d published × %d consumers", st.Ledger.Total.Value, published, len(consumers))
	}
	if want := fmt.Sprintf("%d published", published); !strings.Contains(st.Ledger.Total.Label, want) {
		t.Errorf("ledger total %d reads %q: it does not say %q, as the counter does", st.Ledger.Total.Value, st.Ledger.Total.Label, want)
	}
	for _, p := range st.Ledger.Parts {
		var sum int64
		for _, c := range consumers {
			sum += rabbittest.Counter(st, c+"."+p.Name)
		}
		if p.Value != sum {
			t.Errorf("ledger part %s = %d, the consumers' counters add up to %d", p.Name, p.Value, sum)
		}
	}
	if d := st.Ledger.Duplicates; d == nil || d.Value != rabbittest.Counter(st, d.Name) {
		t.Errorf("ledger apart %+v, counter %d", d, rabbittest.Counter(st, "duplicates"))
	}
	if got := part(st, "lost"); got != 100 {
		t.Errorf("lost %d, want inventory's 100", got)
	}
}

// A fresh lab at the defaults loses nothing: the consumers' queues are bound
// before order-service publishes its first event.
func TestFreshLabLosesNothing(t *testing.T) {
	lb := rabbittest.MustLab(t)
	s, err := eventdriven.Open(eventdriven.Config{AMQPURL: rabbittest.URL(), Lab: lb, Emit: flow.NewEmitter(lb, eventdriven.Name, &rabbittest.Sink{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopology(t, rabbittest.URL(), lb) })
	rabbittest.Run(t, s.Run)
	st := rabbittest.WaitFor(t, s, 10*time.Second, "4 events published and acked by every consumer", func(st flow.Stats) bool {
		for _, c := range consumers {
			if rabbittest.Counter(st, c+".acked") < 4 {
				return false
			}
		}
		return true
	})
	for _, c := range consumers {
		if n := rabbittest.Counter(st, c+".lost"); n != 0 || count(st.Nodes[c], "lost") != 0 {
			t.Errorf("%s lost %d in a fresh lab:\n%s", c, n, rabbittest.Describe(st))
		}
	}
	mustBalance(t, st)
}

// A durable queue's backlog draining after its consumer came back is named
// where it is seen: catching up, eventual consistency, with its numbers.
func TestDrainingBacklogIsNamed(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "stopped" })
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 waiting for inventory", func(st flow.Stats) bool { return count(st.Nodes["queue-inventory"], "ready") == 100 })
	if flag(st.Nodes["queue-inventory"], "catching-up") {
		t.Errorf("a backlog that grows is not catching up: %+v", st.Nodes["queue-inventory"])
	}
	rabbittest.MustSet(t, l, "inventory.processing", 100)
	rabbittest.MustSet(t, l, "inventory.restart", nil)
	st = rabbittest.WaitFor(t, l, 10*time.Second, "inventory's queue catching up", func(st flow.Stats) bool { return flag(st.Nodes["queue-inventory"], "catching-up") })
	want := fmt.Sprintf("catching up: %d ready — eventual consistency", count(st.Nodes["queue-inventory"], "ready"))
	if !slices.Contains(st.Nodes["queue-inventory"].Badges(), want) {
		t.Errorf("inventory's queue draws %q, want %q", st.Nodes["queue-inventory"].Badges(), want)
	}
	if flag(st.Nodes["queue-email"], "catching-up") {
		t.Errorf("email's queue, never behind, is catching up")
	}
}
