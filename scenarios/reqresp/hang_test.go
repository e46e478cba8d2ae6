package reqresp_test

import (
	"slices"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// The article's hang: product-service takes every request and never answers,
// and with no timeout every call order-service starts waits for ever. Nothing
// ends, so the blocked count is every call started at the rate, with no
// plateau; switched off, product-service answers each call it held.
func TestHangingProductServiceHoldsEveryCall(t *testing.T) {
	l := mustRun(t, map[string]any{"hang": true, "errors": "raise"}) // and no timeout, as in the article
	mustSet(t, l, "rate", 20)
	waitFor(t, "60 calls started", func() bool { return l.counters()["calls"] >= 60 })
	mustSet(t, l, "rate", 0)
	waitFor(t, "every call to reach product-service", func() bool {
		c := l.counters()
		return c["product-service.received"] == c["calls"] && c["blocked"] == c["calls"]
	})
	n := l.counters()["calls"]
	l.wantCounters(t, map[string]int64{
		"attempts": n, "in-flight": n, "blocked": n, "product-service.received": n,
		"ok": 0, "failed": 0, "timeouts": 0, "none-returned": 0,
	})
	st := l.Stats()
	if s := st.Nodes["order-service"].State; s != "blocked" {
		t.Errorf("order-service = %q with %d calls waiting, want blocked", s, n)
	}
	product := st.Nodes["product-service"]
	if product.State != "hanging" || fact(t, st, "product-service", "hanging") != true ||
		fact(t, st, "product-service", "holding") != n {
		t.Errorf("product-service %+v, want hanging, holding %d requests", product, n)
	}
	if got, want := product.Badges(), []string{"never answers", "holding " + strconv.FormatInt(n, 10) + " requests"}; !slices.Equal(got, want) {
		t.Errorf("product-service draws %q, want %q", got, want)
	}

	mustSet(t, l, "hang", false)
	waitFor(t, "the held calls to be answered", func() bool { return l.counters()["in-flight"] == 0 })
	l.wantCounters(t, map[string]int64{"ok": n, "failed": 0, "blocked": 0, "calls": n, "product-service.received": n})
	if st := l.Stats(); fact(t, st, "product-service", "holding") != int64(0) || st.Nodes["product-service"].State != "up" {
		t.Errorf("product-service once answering again: %+v", st.Nodes["product-service"])
	}
}

// A timeout turns the hang into failures the caller counts, one per call.
func TestTimeoutEndsCallsToAHangingService(t *testing.T) {
	l := mustRun(t, map[string]any{"hang": true, "timeout_ms": 100, "errors": "raise"})
	mustSet(t, l, "rate", 20)
	waitFor(t, "20 calls started", func() bool { return l.counters()["calls"] >= 20 })
	mustSet(t, l, "rate", 0)
	waitFor(t, "every call to end", func() bool { return l.counters()["in-flight"] == 0 })
	n := l.counters()["calls"]
	l.wantCounters(t, map[string]int64{
		"timeouts": n, "failed": n, "attempts": n, "ok": 0, "blocked": 0, "product-service.received": n,
	})
	res := l.call(t)
	if res.Outcome != "failed" || res.Reason != "timed out after 100 ms" {
		t.Errorf("call = %+v, want failed: timed out after 100 ms", res)
	}
	// product-service lets a request go once it sees its caller hang up.
	waitFor(t, "product-service to let go of the requests its callers gave up", func() bool {
		v, _ := l.Stats().Nodes["product-service"].Value("holding")
		return v == int64(0)
	})
}

// A hang holds at most 500 calls, each a goroutine and a socket: order-service
// has 500 workers, as a threaded server has a pool, and turns the next order
// away while every one of them is waiting.
func TestAHangHoldsAtMost500Calls(t *testing.T) {
	l := mustRun(t, map[string]any{"hang": true})
	mustSet(t, l, "rate", 200)
	waitFor(t, "orders turned away", func() bool { return l.counters()["turned-away"] > 0 })
	mustSet(t, l, "rate", 0)
	waitFor(t, "every held call to reach product-service", func() bool {
		c := l.counters()
		return c["blocked"] == 500 && c["product-service.received"] == 500
	})
	l.wantCounters(t, map[string]int64{"calls": 500, "in-flight": 500, "product-service.received": 500})
	st := l.Stats()
	away := l.counters()["turned-away"]
	if fact(t, st, "order-service", "turned-away") != away || fact(t, st, "product-service", "holding") != int64(500) {
		t.Errorf("order-service %+v, product-service %+v", st.Nodes["order-service"], st.Nodes["product-service"])
	}
	if want := "all 500 workers busy: turned away " + strconv.FormatInt(away, 10); !slices.Contains(st.Nodes["order-service"].Badges(), want) {
		t.Errorf("order-service draws %q, want %q among them", st.Nodes["order-service"].Badges(), want)
	}
	if err := l.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	goleak.VerifyNone(t)
}
