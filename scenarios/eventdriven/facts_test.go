package eventdriven_test

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// Walkthrough checks read node facts by name, so every node sends the same
// facts, of the same types and in the same order, whatever its mode: queues
// durable or exclusive, ack manual or auto, a consumer stopped, the path cut,
// the broker unreachable, under each preset.
func TestEveryNodeSendsTheSameFactsInEveryMode(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	modes := map[string]flow.Stats{}
	modes["defaults"] = rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))

	mustApply(t, l, "article")
	st := rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as in the article", func(st flow.Stats) bool {
		return rabbittest.AllUp(consumers...)(st) && word(st.Nodes["inventory"], "ack-mode") == "auto" && flag(st.Nodes["queue-inventory"], "exclusive")
	})
	modes["article (exclusive, auto-ack)"] = st
	mustShow(t, st.Nodes["inventory"], "auto-ack", fmt.Sprintf("in memory %d", count(st.Nodes["inventory"], "in-memory")), "processing 0 ms")

	mustApply(t, l, "reliable")
	st = rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	modes["reliable (durable, manual ack)"] = st
	mustShow(t, st.Nodes["inventory"], "manual ack, prefetch 10", "processing 0 ms")
	q := st.Nodes["queue-inventory"]
	mustShow(t, q, fmt.Sprintf("ready %d", count(q, "ready")), fmt.Sprintf("consumers %d", count(q, "consumers")), fmt.Sprintf("unacked %d", count(q, "unacked")), "durable")

	// Orders flow from here on, so that counts and costs are drawn too;
	// before, nothing lost in a change of queue kind adds a badge.
	rabbittest.MustSet(t, l, "order-service.rate", 20)
	rabbittest.MustSet(t, l, "inventory.stop", nil)
	modes["inventory stopped"] = rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "stopped" })

	rabbittest.MustSet(t, l, "broker.cut", nil)
	st = rabbittest.WaitFor(t, l, 5*time.Second, "the running services cut off", rabbittest.AllUnreachable("order-service", "email", "analytics"))
	modes["path cut"] = st
	if !slices.Contains(st.Nodes["exchange"].Badges(), "path from the services cut") {
		t.Errorf("exchange shows %v with the path cut", st.Nodes["exchange"].Badges())
	}
	rabbittest.MustSet(t, l, "broker.restore", nil)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gone := MustStart(t, "amqp://guest:guest@"+addr+"/")
	rabbittest.MustSet(t, gone, "order-service.rate", 5) // a paused order-service does not dial
	modes["broker unreachable"] = rabbittest.WaitFor(t, gone, 5*time.Second, "every node unreachable",
		rabbittest.AllUnreachable("exchange", "order-service", "inventory", "email", "analytics"))

	want := factNames(modes["defaults"])
	for mode, st := range modes {
		got := factNames(st)
		for node, names := range want {
			if !slices.Equal(got[node], names) {
				t.Errorf("%s: %s sends %v, at defaults %v", mode, node, got[node], names)
			}
		}
		for node := range got {
			if _, ok := want[node]; !ok {
				t.Errorf("%s: node %s, not sent at defaults", mode, node)
			}
		}
	}
	for _, n := range l.View().Nodes {
		if len(want[n.ID]) == 0 {
			t.Errorf("node %s sends no facts", n.ID)
		}
	}
}

// factNames lists each node's facts as "name (Go type)", in order.
func factNames(st flow.Stats) map[string][]string {
	out := map[string][]string{}
	for node, ns := range st.Nodes {
		for _, f := range ns.Facts {
			out[node] = append(out[node], fmt.Sprintf("%s (%T)", f.Name, f.Value))
		}
	}
	return out
}

// mustShow checks the badges a node shows, in order.
func mustShow(tb testing.TB, ns flow.NodeState, badges ...string) {
	tb.Helper()
	if got := ns.Badges(); !slices.Equal(got, badges) {
		tb.Errorf("node shows %q, want %q", got, badges)
	}
}
