package reqresp_test

import (
	"slices"
	"testing"
)

// order-service's state word says what its callers got from the calls that
// ended in the last 5 s: ok, a raised failure, or None in place of one.
func TestOrderServiceStateSaysWhatItsCallersGot(t *testing.T) {
	l := mustRun(t, map[string]any{"errors": "raise"})
	want := func(when, state string, calls, failed int64, badges ...string) {
		t.Helper()
		st := l.Stats()
		order := st.Nodes["order-service"]
		if order.State != state || fact(t, st, "order-service", "recent-calls") != calls ||
			fact(t, st, "order-service", "recent-failed") != failed {
			t.Errorf("%s: order-service %+v, want %s with %d of %d recent calls failed", when, order, state, failed, calls)
		}
		if got := order.Badges(); !slices.Equal(got, badges) {
			t.Errorf("%s: order-service draws %q, want %q", when, got, badges)
		}
	}

	want("before any call", "ok", 0, 0, "in flight 0", "no timeout")
	for range 3 {
		l.call(t)
	}
	want("all ok", "ok", 3, 0, "in flight 0", "no timeout")

	mustSet(t, l, "up", false)
	for range 2 {
		l.call(t)
	}
	want("product-service down, errors raised", "failing", 5, 2, "in flight 0", "no timeout", "failed 2 of 5 in 5 s")

	mustSet(t, l, "errors", "swallow")
	l.call(t)
	want("product-service down, errors swallowed", "returns None", 6, 3, "in flight 0", "no timeout", "failed 3 of 6 in 5 s")

	mustSet(t, l, "up", true)
	if res := l.call(t); res.Outcome != "ok" {
		t.Fatalf("call once product-service is back = %+v, want ok", res)
	}
	// The failures are still recent: the callers got None moments ago.
	want("just recovered", "returns None", 7, 3, "in flight 0", "no timeout", "failed 3 of 7 in 5 s")
	waitFor(t, "the failures to age out of the 5 s window", func() bool {
		v, _ := l.Stats().Nodes["order-service"].Value("recent-failed")
		return v == int64(0)
	})
	l.call(t)
	st := l.Stats()
	if s := st.Nodes["order-service"].State; s != "ok" || fact(t, st, "order-service", "recent-failed") != int64(0) {
		t.Errorf("recovered: order-service %+v, want ok", st.Nodes["order-service"])
	}
}
