package reqresp_test

import (
	"slices"
	"strings"
	"testing"

	"flowlab/scenarios/reqresp"
)

// A timeout is fixed when an attempt starts, as requests.get's timeout= is:
// a new value applies to the next attempt at once, the attempts already
// waiting keep theirs, and order-service says how many those are.
func TestANewTimeoutLeavesWaitingCallsAlone(t *testing.T) {
	l := mustRun(t, map[string]any{"hang": true, "errors": "raise"}) // and no timeout, as in the article
	waiting := func(n int64, timeoutMS int) chan reqresp.Result {
		mustSet(t, l, "timeout_ms", timeoutMS)
		results := make(chan reqresp.Result, n)
		before := l.counters()["blocked"]
		for range n {
			go func() { results <- l.call(t) }()
		}
		waitFor(t, "the calls to wait on product-service", func() bool {
			c := l.counters()
			return c["blocked"] == before+n && c["product-service.received"] == c["attempts"]
		})
		return results
	}
	want := func(when string, old int64, badge string) {
		t.Helper()
		st := l.Stats()
		if got := fact(t, st, "order-service", "blocked-old-timeout"); got != old {
			t.Errorf("%s: blocked-old-timeout = %v, want %d", when, got, old)
		}
		badges := st.Nodes["order-service"].Badges()
		drawn := slices.ContainsFunc(badges, func(b string) bool { return strings.Contains(b, "waiting keep") })
		if badge == "" && drawn || badge != "" && !slices.Contains(badges, badge) {
			t.Errorf("%s: order-service draws %q, want %q", when, badges, badge)
		}
	}

	untimed := waiting(5, 0)
	want("nothing changed", 0, "")
	mustSet(t, l, "timeout_ms", 100)
	want("a timeout set while 5 wait", 5, "5 waiting keep no timeout")
	if res := l.call(t); res.Outcome != "failed" || res.Reason != "timed out after 100 ms" {
		t.Errorf("call after the change = %+v, want failed: timed out after 100 ms", res)
	}
	l.wantCounters(t, map[string]int64{"timeouts": 1, "blocked": 5, "in-flight": 5})

	timed := waiting(2, 10000)
	mustSet(t, l, "timeout_ms", 0)
	want("back to none with 2 under 10 s", 2, "2 waiting keep a 10000 ms timeout")
	mustSet(t, l, "timeout_ms", 100)
	want("two old timeouts", 7, "7 waiting keep old timeouts")

	mustSet(t, l, "hang", false)
	for range 5 {
		if res := <-untimed; res.Outcome != "ok" {
			t.Errorf("call that waited with no timeout = %+v, want ok once answered", res)
		}
	}
	for range 2 {
		if res := <-timed; res.Outcome != "ok" {
			t.Errorf("call that waited under 10 s = %+v, want ok once answered", res)
		}
	}
	want("none waiting", 0, "")
}
