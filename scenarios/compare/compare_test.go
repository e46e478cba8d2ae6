package compare_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"flowlab/flow"
	"flowlab/scenarios/compare"
	"flowlab/scenarios/internal/rabbittest"
)

// rate is the fixed offered load of the outage tests, orders a second in
// each column.
const rate = 25

// start runs the comparison in a fresh lab against the real RabbitMQ and an
// embedded Kafka of its own, with knobs set before Run, and tears down what
// it made on both when the test ends.
func start(t *testing.T, knobs map[string]any) *compare.Scenario {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := rabbittest.MustLab(t)
	s, err := compare.Open(compare.Config{AMQPURL: rabbittest.URL(), Brokers: c.ListenAddrs(), Lab: l,
		Emit: flow.NewEmitter(l, compare.Name, &rabbittest.Sink{})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Teardown(ctx); err != nil {
			t.Errorf("Teardown: %v", err)
		}
	})
	for k, v := range knobs {
		rabbittest.MustSet(t, s, k, v)
	}
	rabbittest.Run(t, s.Run)
	return s
}

// fact reads a whole-number fact of a node; a missing one fails the test.
func fact(t *testing.T, st flow.Stats, node, name string) int64 {
	t.Helper()
	v, ok := st.Nodes[node].Value(name)
	if !ok {
		t.Fatalf("node %s sends no fact %s", node, name)
	}
	n, ok := v.(int64)
	if !ok {
		t.Fatalf("fact %s of %s is %T, not int64", name, node, v)
	}
	return n
}

var cols = []string{"http", "rabbitmq", "kafka"}

// settled holds when every caller has its answer and every accepted order
// is fulfilled or lost, in every column.
func settled(st flow.Stats) bool {
	for _, c := range cols {
		placed := rabbittest.Counter(st, c+".placed")
		if placed != rabbittest.Counter(st, c+".accepted")+rabbittest.Counter(st, c+".failed") {
			return false
		}
		if rabbittest.Counter(st, c+".accepted") != rabbittest.Counter(st, c+".fulfilled")+rabbittest.Counter(st, c+".lost") {
			return false
		}
	}
	return true
}

// answered holds when every caller has its answer.
func answered(st flow.Stats) bool {
	for _, c := range cols {
		if rabbittest.Counter(st, c+".placed") != rabbittest.Counter(st, c+".accepted")+rabbittest.Counter(st, c+".failed") {
			return false
		}
	}
	return true
}

type count map[string]int64 // by counter name

func counts(st flow.Stats) count {
	c := count{}
	for _, x := range st.Counters {
		c[x.Name] = x.Value
	}
	return c
}

// outage warms the columns up at the fixed rate, stops the load and lets
// everything settle, takes inventory down, runs the load for a window of
// at least n orders, stops it and waits for every caller's answer. It
// returns the counters before the window and the window's order count,
// with the stats at the end of the window.
func outage(t *testing.T, s *compare.Scenario, n int64) (before count, window int64, st flow.Stats) {
	t.Helper()
	rabbittest.MustSet(t, s, "load.rate", rate)
	rabbittest.WaitFor(t, s, 20*time.Second, "every column to fulfil orders", func(st flow.Stats) bool {
		for _, c := range cols {
			if rabbittest.Counter(st, c+".fulfilled") < 10 {
				return false
			}
		}
		return true
	})
	rabbittest.MustSet(t, s, "load.rate", 0)
	st = rabbittest.WaitFor(t, s, 10*time.Second, "every order to settle", settled)
	before = counts(st)
	rabbittest.MustSet(t, s, "inventory.up", false)
	rabbittest.WaitFor(t, s, 10*time.Second, "inventory down in every column", func(st flow.Stats) bool {
		return st.Nodes["rabbitmq-inventory"].State == "down" && st.Nodes["kafka-inventory"].State == "down"
	})
	rabbittest.MustSet(t, s, "load.rate", rate)
	rabbittest.WaitFor(t, s, 10*time.Second, "the window's orders", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "kafka.placed")-before["kafka.placed"] >= n
	})
	rabbittest.MustSet(t, s, "load.rate", 0)
	st = rabbittest.WaitFor(t, s, 10*time.Second, "every caller's answer", answered)
	window = rabbittest.Counter(st, "http.placed") - before["http.placed"]
	for _, c := range cols {
		if got := rabbittest.Counter(st, c+".placed") - before[c+".placed"]; got != window {
			t.Fatalf("%s had %d orders in the window, http %d: the load places one in each column at once", c, got, window)
		}
	}
	return before, window, st
}

// delta is how much counter name grew since before.
func delta(st flow.Stats, before count, name string) int64 {
	return rabbittest.Counter(st, name) - before[name]
}

func TestInventoryDownDurable(t *testing.T) {
	s := start(t, nil)
	before, w, st := outage(t, s, 40)
	for _, c := range cols {
		if before[c+".failed"] != 0 || before[c+".lost"] != 0 {
			t.Fatalf("%s failed or lost orders while inventory was up:\n%s", c, rabbittest.Describe(st))
		}
	}
	// HTTP: every order placed in the window failed at its caller.
	if f, a := delta(st, before, "http.failed"), delta(st, before, "http.accepted"); f != w || a != 0 {
		t.Errorf("http: %d failed and %d accepted of the window's %d orders; want all failed", f, a, w)
	}
	// The brokers: every order accepted, all of them waiting.
	for _, c := range []string{"rabbitmq", "kafka"} {
		if a, f := delta(st, before, c+".accepted"), delta(st, before, c+".failed"); a != w || f != 0 {
			t.Errorf("%s: %d accepted and %d failed of the window's %d orders; want all accepted", c, a, f, w)
		}
		if b := fact(t, st, c, "backlog"); b != w {
			t.Errorf("%s: backlog %d, want the window's %d orders", c, b, w)
		}
	}
	// As the brokers themselves count it: the queue's depth, the group's lag.
	st = rabbittest.WaitFor(t, s, 5*time.Second, "the broker to hold the window's orders", func(st flow.Stats) bool {
		return fact(t, st, "rabbitmq-inventory", "ready") == w && fact(t, st, "kafka-inventory", "lag") == w
	})
	// Email kept running: only inventory's side waits.
	if e := fact(t, st, "rabbitmq-email", "sent"); e != rabbittest.Counter(st, "rabbitmq.accepted") {
		t.Errorf("rabbitmq: email sent %d of %d accepted", e, rabbittest.Counter(st, "rabbitmq.accepted"))
	}

	rabbittest.MustSet(t, s, "inventory.up", true)
	st = rabbittest.WaitFor(t, s, 15*time.Second, "everything accepted to be fulfilled", settled)
	rabbittest.MustBalance(t, st)
	for _, c := range []string{"rabbitmq", "kafka"} {
		if f := delta(st, before, c+".fulfilled"); f != w {
			t.Errorf("%s: %d of the window's %d orders fulfilled after recovery", c, f, w)
		}
	}
	for _, c := range cols {
		if l, d := rabbittest.Counter(st, c+".lost"), rabbittest.Counter(st, c+".duplicates"); l != 0 || d != 0 {
			t.Errorf("%s: %d lost, %d duplicates; want none", c, l, d)
		}
	}
	st = rabbittest.WaitFor(t, s, 5*time.Second, "the brokers to be drained and every catch-up timed", func(st flow.Stats) bool {
		for _, c := range cols {
			if v, _ := st.Nodes[c].Value("catching-up"); v != false {
				return false
			}
		}
		return fact(t, st, "rabbitmq-inventory", "ready") == 0 && fact(t, st, "kafka-inventory", "lag") == 0
	})
	for _, c := range []string{"rabbitmq", "kafka"} {
		if ms := fact(t, st, c, "catch-up-ms"); ms <= 0 {
			t.Errorf("%s: catch-up took %d ms; a backlog of %d takes some time", c, ms, w)
		}
	}
}

func TestInventoryDownExclusiveAutoAckLosesTheWindow(t *testing.T) {
	s := start(t, map[string]any{"rabbitmq.queue": "exclusive", "rabbitmq.ack": "on-delivery"})
	// Orders published before the consumers' first queues existed went
	// nowhere too: the article's queues lose them as well, and the window
	// is counted from what was lost before it.
	before, w, st := outage(t, s, 40)
	if a := delta(st, before, "rabbitmq.accepted"); a != w {
		t.Errorf("rabbitmq: %d of the window's %d orders accepted; the caller cannot tell", a, w)
	}
	rabbittest.MustSet(t, s, "inventory.up", true)
	st = rabbittest.WaitFor(t, s, 15*time.Second, "everything accepted to be fulfilled or lost", settled)
	rabbittest.MustBalance(t, st)
	if l, f := delta(st, before, "rabbitmq.lost"), delta(st, before, "rabbitmq.fulfilled"); l != w || f != 0 {
		t.Errorf("rabbitmq: %d lost and %d fulfilled of the window's %d orders; want all lost", l, f, w)
	}
	if l := fact(t, st, "rabbitmq", "lost"); l != rabbittest.Counter(st, "rabbitmq.lost") {
		t.Errorf("the scorecard shows %d lost, the counter %d", l, rabbittest.Counter(st, "rabbitmq.lost"))
	}
	// Kafka, beside it, lost nothing.
	if l, f := rabbittest.Counter(st, "kafka.lost"), delta(st, before, "kafka.fulfilled"); l != 0 || f != w {
		t.Errorf("kafka: %d lost and %d fulfilled of the window's %d", l, f, w)
	}
}
