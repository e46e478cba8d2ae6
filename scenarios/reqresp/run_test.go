package reqresp_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestLedgerBalancesUnderLoad(t *testing.T) {
	l := mustRun(t, map[string]any{
		"latency_ms": 50, "error_rate": 20, "unknown_ids": 20, "timeout_ms": 2000,
		"retry": "exponential", "retry_delay_ms": 10, "breaker": true, "breaker_failures": 20,
	})
	mustSet(t, l, "rate", 100)
	sawInFlight := false
	waitFor(t, "50 calls and a chart point", func() bool {
		st := l.Stats()
		if !st.Ledger.Balanced() {
			t.Fatalf("ledger out of balance under load: %+v", st.Ledger)
		}
		sawInFlight = sawInFlight || st.Ledger.Parts[3].Value > 0
		return st.Ledger.Total.Value >= 50 && st.Series.Throughput > 0
	})
	if !sawInFlight {
		t.Error("never saw a call in flight: the ledger was not tested under load")
	}

	mustSet(t, l, "rate", 0)
	waitFor(t, "every call to end", func() bool { return l.counters()["in-flight"] == 0 })
	c := l.counters()
	if !l.Stats().Ledger.Balanced() || c["ok"]+c["not-found"]+c["failed"] != c["calls"] {
		t.Errorf("ledger once idle: %+v", l.Stats().Ledger)
	}
	if c["ok"] == 0 || c["not-found"] == 0 || c["server-errors"] == 0 {
		t.Errorf("counters %v: want ok calls, 404s and injected 5xx under this load", c)
	}
}

func TestRunStopsWithCallsPiledUp(t *testing.T) {
	for name, knobs := range map[string]map[string]any{
		"slow":    {"latency_ms": 5000},
		"hanging": {"hang": true},
	} { // and no timeout, as in the article
		t.Run(name, func(t *testing.T) {
			l := mustRun(t, knobs)
			mustSet(t, l, "rate", 50)
			waitFor(t, "order-service to block", func() bool { return l.Stats().Nodes["order-service"].State == "blocked" })

			if err := l.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			c := l.counters()
			if c["in-flight"] != 0 || c["blocked"] != 0 || !l.Stats().Ledger.Balanced() {
				t.Errorf("after Run: counters %v, ledger %+v; want nothing in flight", c, l.Stats().Ledger)
			}
			if conn, err := net.Dial("tcp", l.ProductAddr()); !errors.Is(err, syscall.ECONNREFUSED) {
				if conn != nil {
					conn.Close()
				}
				t.Errorf("dial product-service after Run: %v, want connection refused", err)
			}
			goleak.VerifyNone(t)
		})
	}
}

func TestViewShowsTheServicesAndTheAddress(t *testing.T) {
	l := mustRun(t, nil)
	v := l.View()
	kinds := map[string]string{}
	notes := map[string]string{}
	for _, n := range v.Nodes {
		kinds[n.ID], notes[n.ID] = n.Kind, n.Note
		if n.X < 0 || n.X > 1000 || n.Y < 0 || n.Y > 560 {
			t.Errorf("node %s at (%v, %v) is off the 1000×560 canvas", n.ID, n.X, n.Y)
		}
		if _, ok := l.Stats().Nodes[n.ID]; !ok {
			t.Errorf("Stats has no state for node %s", n.ID)
		}
	}
	want := map[string]string{"order-service": "service", "breaker": "gate", "product-service": "service", "outside-client": "client"}
	for id, kind := range want {
		if kinds[id] != kind {
			t.Errorf("node %s has kind %q, want %q", id, kinds[id], kind)
		}
	}
	if notes["product-service"] != l.ProductAddr() {
		t.Errorf("product-service note %q, want its address %s", notes["product-service"], l.ProductAddr())
	}
	if want := "curl http://" + l.ProductAddr() + "/products/123"; notes["outside-client"] != want {
		t.Errorf("outside-client note %q, want %q", notes["outside-client"], want)
	}
	if len(v.Edges) != 2 || v.Edges[0].From != "order-service" || v.Edges[0].To != "product-service" ||
		v.Edges[1].From != "outside-client" || v.Edges[1].To != "product-service" {
		t.Errorf("edges %+v", v.Edges)
	}
}
