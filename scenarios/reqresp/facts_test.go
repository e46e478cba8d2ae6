package reqresp_test

import (
	"fmt"
	"slices"
	"testing"

	"flowlab/flow"
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

// fact reads one fact of one node, failing the test when it is not sent.
func fact(tb testing.TB, st flow.Stats, node, name string) any {
	tb.Helper()
	v, ok := st.Nodes[node].Value(name)
	if !ok {
		tb.Fatalf("%s sends no fact %q: %+v", node, name, st.Nodes[node].Facts)
	}
	return v
}

// Walkthrough checks read facts by name whatever the lab is doing, so every
// node sends the same facts, of the same types, in every mode; the values
// and the drawn badges follow the mode.
func TestEveryNodeSendsTheSameFactsInEveryMode(t *testing.T) {
	l := mustRun(t, map[string]any{"errors": "raise"})
	want := factShape(l.Stats())
	if len(want) != 4 {
		t.Fatalf("nodes with facts: %v, want all four", want)
	}
	for _, node := range []string{"order-service", "breaker", "product-service", "outside-client"} {
		if len(want[node]) == 0 {
			t.Errorf("%s sends no facts", node)
		}
	}
	mode := func(name string, check func(st flow.Stats)) {
		t.Helper()
		st := l.Stats()
		for node, facts := range factShape(st) {
			if !slices.Equal(facts, want[node]) {
				t.Errorf("%s: %s sends %v, at the defaults %v", name, node, facts, want[node])
			}
		}
		check(st)
	}
	badges := func(st flow.Stats, node string, want ...string) {
		t.Helper()
		if got := st.Nodes[node].Badges(); !slices.Equal(got, want) {
			t.Errorf("%s draws %q, want %q", node, got, want)
		}
	}

	mode("defaults", func(st flow.Stats) {
		badges(st, "order-service", "in flight 0", "no timeout")
		badges(st, "breaker")
		badges(st, "product-service")
		badges(st, "outside-client")
		if fact(t, st, "product-service", "up") != true || fact(t, st, "breaker", "state") != "off" ||
			fact(t, st, "order-service", "timeout-ms") != int64(0) {
			t.Errorf("defaults: facts %+v", st.Nodes)
		}
	})

	mustSet(t, l, "latency_ms", 300)
	mustSet(t, l, "timeout_ms", 100)
	mode("product-service slow", func(st flow.Stats) {
		badges(st, "product-service", "latency 300 ms")
		badges(st, "order-service", "in flight 0")
		if st.Nodes["product-service"].State != "slow" || fact(t, st, "product-service", "latency-ms") != 300.0 ||
			fact(t, st, "order-service", "timeout-ms") != int64(100) {
			t.Errorf("slow: product-service %+v, order-service %+v", st.Nodes["product-service"], st.Nodes["order-service"])
		}
	})

	mustSet(t, l, "timeout_ms", 0)
	mustSet(t, l, "latency_ms", 1000) // long enough to see the call wait
	done := make(chan struct{})
	go func() { defer close(done); l.call(t) }()
	waitFor(t, "a call blocked on product-service", func() bool {
		return fact(t, l.Stats(), "order-service", "blocked") == int64(1)
	})
	mode("a call blocked", func(st flow.Stats) {
		badges(st, "order-service", "in flight 1", "blocked on socket 1", "no timeout")
		if fact(t, st, "order-service", "in-flight") != int64(1) {
			t.Errorf("blocked: order-service %+v", st.Nodes["order-service"])
		}
	})
	<-done

	mustSet(t, l, "latency_ms", 0)
	mustSet(t, l, "error_rate", 40)
	mode("product-service erroring", func(st flow.Stats) {
		badges(st, "product-service", "errors 40 %")
		if fact(t, st, "product-service", "error-rate-percent") != int64(40) {
			t.Errorf("erroring: product-service %+v", st.Nodes["product-service"])
		}
	})

	mustSet(t, l, "error_rate", 0)
	mustSet(t, l, "hang", true)
	mode("product-service hanging", func(st flow.Stats) {
		badges(st, "product-service", "never answers")
		if st.Nodes["product-service"].State != "hanging" || fact(t, st, "product-service", "hanging") != true ||
			fact(t, st, "product-service", "holding") != int64(0) {
			t.Errorf("hanging: product-service %+v", st.Nodes["product-service"])
		}
	})

	mustSet(t, l, "hang", false)
	mustSet(t, l, "breaker_failures", 2)
	mustSet(t, l, "breaker_open_ms", 500)
	mustSet(t, l, "breaker", true)
	mustSet(t, l, "up", false)
	l.call(t)
	mode("breaker closed, one failure, product-service down", func(st flow.Stats) {
		badges(st, "breaker", "failures 1/2")
		badges(st, "product-service")
		if fact(t, st, "product-service", "up") != false || st.Nodes["product-service"].State != "down" ||
			fact(t, st, "breaker", "state") != "closed" || fact(t, st, "breaker", "failures") != int64(1) ||
			fact(t, st, "breaker", "failures-to-open") != int64(2) {
			t.Errorf("down: product-service %+v, breaker %+v", st.Nodes["product-service"], st.Nodes["breaker"])
		}
	})

	l.call(t)
	mode("breaker open", func(st flow.Stats) {
		badges(st, "breaker", "calls blocked for 0.5 s")
		if st.Nodes["breaker"].State != "open" || fact(t, st, "breaker", "state") != "open" ||
			fact(t, st, "breaker", "open-ms") != int64(500) {
			t.Errorf("open: breaker %+v", st.Nodes["breaker"])
		}
	})

	waitFor(t, "the breaker to turn half-open", func() bool { return l.Stats().Nodes["breaker"].State == "half-open" })
	mode("breaker half-open", func(st flow.Stats) {
		badges(st, "breaker", "one trial call")
		if fact(t, st, "breaker", "state") != "half-open" {
			t.Errorf("half-open: breaker %+v", st.Nodes["breaker"])
		}
	})

	mustSet(t, l, "up", true)
	for _, p := range l.Presets() {
		if err := flow.ApplyPreset(l, p.Name); err != nil {
			t.Fatalf("preset %s: %v", p.Name, err)
		}
		mode("preset "+p.Name, func(flow.Stats) {})
	}
}
