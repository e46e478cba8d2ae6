package workqueue_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/scenarios/workqueue"
)

// factShape is each node's fact names with the Go type of each value, in
// order.
func factShape(st flow.Stats) map[string][]string {
	shape := map[string][]string{}
	for id, ns := range st.Nodes {
		for _, f := range ns.Facts {
			shape[id] = append(shape[id], fmt.Sprintf("%s:%T", f.Name, f.Value))
		}
	}
	return shape
}

// factIs says whether node sends the fact name with the value want.
func factIs(st flow.Stats, node, name string, want any) bool {
	v, ok := st.Nodes[node].Value(name)
	return ok && v == want
}

// sameShape fails the test where a node sends other facts than want.
func sameShape(tb testing.TB, mode string, st flow.Stats, want map[string][]string) {
	tb.Helper()
	for node, facts := range factShape(st) {
		if !slices.Equal(facts, want[node]) {
			tb.Errorf("%s: %s sends %v, at the start %v", mode, node, facts, want[node])
		}
	}
}

func wantBadges(tb testing.TB, st flow.Stats, node string, want ...string) {
	tb.Helper()
	if got := st.Nodes[node].Badges(); !slices.Equal(got, want) {
		tb.Errorf("%s draws %q, want %q", node, got, want)
	}
}

// Walkthrough checks read facts by name whatever the lab is doing, so every
// node sends the same facts, of the same types, from its first frame on: at
// the defaults, with jobs waiting to retry, with a worker stopped, with the
// broker path cut and under each preset. The badges follow the values.
func TestEveryNodeSendsTheSameFactsInEveryMode(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	want := factShape(l.Stats()) // before any service has connected
	if len(want) != 4+len(workers) {
		t.Fatalf("nodes with facts: %v, want every node", want)
	}
	for _, node := range []string{"order-service", "emails", "retry", "dlq", "worker-1"} {
		if len(want[node]) == 0 {
			t.Errorf("%s sends no facts", node)
		}
	}

	st := rabbittest.WaitFor(t, l, 10*time.Second, "every worker up and the queues read", func(st flow.Stats) bool {
		return rabbittest.AllUp(workers...)(st) && factIs(st, "emails", "consumers", int64(3))
	})
	sameShape(t, "defaults", st, want)
	wantBadges(t, st, "order-service", "paused")
	wantBadges(t, st, "emails", "ready 0", "consumers 3")
	wantBadges(t, st, "retry")
	wantBadges(t, st, "dlq", "ready 0")
	wantBadges(t, st, "worker-1", "unacked 0", "prefetch 5", "0 done")
	if !factIs(st, "worker-1", "up", true) || !factIs(st, "emails", "exists", true) || !factIs(st, "emails", "unreachable", false) {
		t.Errorf("defaults: worker-1 %+v, emails %+v", st.Nodes["worker-1"], st.Nodes["emails"])
	}

	// Every send fails and attempts 3 and 4 wait 1 s and 2 s: long enough
	// for the watcher, which reads the queues once a second, to see them.
	rabbittest.MustSet(t, l, "emails.failure", 100)
	rabbittest.MustSet(t, l, "emails.max-attempts", 5)
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st = rabbittest.WaitFor(t, l, 10*time.Second, "jobs waiting in a retry queue", func(st flow.Stats) bool {
		v, _ := st.Nodes["retry"].Value("ready")
		return v.(int64) > 0
	})
	sameShape(t, "jobs waiting to retry", st, want)
	var drawn []string
	for a := 1; a < 10; a++ {
		v, _ := st.Nodes["retry"].Value(fmt.Sprintf("ready-after-attempt-%d", a))
		if n := v.(int64); n > 0 {
			drawn = append(drawn, fmt.Sprintf("after attempt %d (%s): %d", a, 250*time.Millisecond<<(a-1), n))
		}
	}
	wantBadges(t, st, "retry", drawn...)

	rabbittest.MustSet(t, l, "order-service.rate", 5)
	rabbittest.MustSet(t, l, "worker-2.stop", nil)
	st = rabbittest.WaitFor(t, l, 5*time.Second, "worker-2 stopped and the 100 orders sent", func(st flow.Stats) bool {
		return st.Nodes["worker-2"].State == "stopped" && factIs(st, "order-service", "unsent", int64(0))
	})
	sameShape(t, "a worker stopped", st, want)
	wantBadges(t, st, "worker-2", "0 done") // every send fails: no job done
	wantBadges(t, st, "order-service", "5 orders/s")
	if !factIs(st, "worker-2", "up", false) || !factIs(st, "worker-2", "prefetch", int64(5)) || !factIs(st, "order-service", "rate-per-s", int64(5)) {
		t.Errorf("stopped: worker-2 %+v, order-service %+v", st.Nodes["worker-2"], st.Nodes["order-service"])
	}

	rabbittest.MustSet(t, l, "broker.cut", nil)
	st = rabbittest.WaitFor(t, l, 5*time.Second, "order-service and worker-1 cut off", rabbittest.AllUnreachable("order-service", "worker-1"))
	sameShape(t, "the broker path cut", st, want)
	if !factIs(st, "emails", "path-cut", true) || !slices.Contains(st.Nodes["emails"].Badges(), "path from the services cut") {
		t.Errorf("cut: emails %+v", st.Nodes["emails"])
	}
	for _, node := range []string{"order-service", "worker-1"} {
		b := st.Nodes[node].Badges()
		if errText, _ := st.Nodes[node].Value("error"); errText == "" || len(b) < 2 || !strings.HasPrefix(b[len(b)-2], "broker ") || b[len(b)-1] != errText {
			t.Errorf("cut: %s draws %q with error %q, want the broker and the error", node, b, errText)
		}
	}
	rabbittest.MustSet(t, l, "broker.restore", nil)

	for _, p := range l.Presets() {
		if err := flow.ApplyPreset(l, p.Name); err != nil {
			t.Fatalf("preset %s: %v", p.Name, err)
		}
		sameShape(t, "preset "+p.Name, l.Stats(), want)
	}
	rabbittest.MustSet(t, l, "order-service.rate", 0)

	// With no broker at all, the emails node says so with the same facts.
	nl := rabbittest.MustLab(t)
	none, err := workqueue.Open(workqueue.Config{AMQPURL: "amqp://guest:guest@127.0.0.1:1/", Lab: nl, Emit: flow.NewEmitter(nl, workqueue.Name, &rabbittest.Sink{})})
	if err != nil {
		t.Fatal(err)
	}
	rabbittest.Run(t, none.Run)
	st = rabbittest.WaitFor(t, none, 10*time.Second, "the watcher to find no broker", rabbittest.AllUnreachable("emails"))
	sameShape(t, "no broker", st, want)
	if !factIs(st, "emails", "unreachable", true) || !factIs(st, "emails", "exists", false) || !strings.HasPrefix(st.Nodes["emails"].Badges()[0], "no broker at ") {
		t.Errorf("no broker: emails %+v", st.Nodes["emails"])
	}
}
