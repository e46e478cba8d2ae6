package reqresp_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"flowlab/flow"
)

func TestSlowServiceTimesOutEveryAttempt(t *testing.T) {
	l := mustRun(t, map[string]any{
		"latency_ms": 500, "timeout_ms": 100,
		"retry": "fixed", "max_attempts": 3, "retry_delay_ms": 10, "errors": "raise",
	})
	const calls = 3
	for range calls {
		res := l.call(t)
		if res.Outcome != "failed" || res.Attempts != 3 || res.Reason != "timed out after 100 ms" {
			t.Errorf("call = %+v, want failed after 3 attempts: timed out after 100 ms", res)
		}
		want := []string{
			"request#1", "timeout#1", "retry#2",
			"request#2", "timeout#2", "retry#3",
			"request#3", "timeout#3", "result#3",
		}
		if got := l.events.steps(res.MsgID); !slices.Equal(got, want) {
			t.Errorf("hops of %s = %v, want %v", res.MsgID, got, want)
		}
		for _, e := range l.events.of(res.MsgID) {
			switch e.Kind {
			case flow.KindTimeout:
				if e.From != "order-service" || e.To != "product-service" || e.Detail.LatencyMS < 100 {
					t.Errorf("timeout event = %+v", e)
				}
			case flow.KindRetry:
				if e.From != "order-service" || e.To != "order-service" || e.Detail.DelayMS != 10 {
					t.Errorf("retry event = %+v, want a 10 ms delay", e)
				}
			case flow.KindResult:
				if e.Detail.Outcome != "failed" || e.Detail.Error != res.Reason {
					t.Errorf("result event = %+v", e)
				}
			}
		}
	}
	l.wantCounters(t, map[string]int64{
		"calls": calls, "attempts": 3 * calls, "retries": 2 * calls, "timeouts": 3 * calls,
		"failed": calls, "ok": 0, "in-flight": 0, "blocked": 0, "refused": 0, "rejected": 0,
	})
}

func TestExponentialBackoffStaysUnderItsCeiling(t *testing.T) {
	l := mustRun(t, map[string]any{
		"up": false, "retry": "exponential", "max_attempts": 4, "retry_delay_ms": 10, "errors": "raise",
	})
	res := l.call(t)
	if res.Attempts != 4 {
		t.Fatalf("call = %+v, want 4 attempts", res)
	}
	var ceilings []float64
	for _, e := range l.events.of(res.MsgID) {
		if e.Kind == flow.KindRetry {
			ceiling := 10 * float64(int(1)<<(e.Attempt-2)) // base·2^(n-1) before attempt n+1
			if e.Detail.DelayMS < 0 || e.Detail.DelayMS > ceiling {
				t.Errorf("retry before attempt %d waits %v ms, want 0–%v", e.Attempt, e.Detail.DelayMS, ceiling)
			}
			ceilings = append(ceilings, ceiling)
		}
	}
	if !slices.Equal(ceilings, []float64{10, 20, 40}) {
		t.Errorf("retries with ceilings %v, want 10, 20, 40", ceilings)
	}
}

func TestNotFoundIsNeverRetried(t *testing.T) {
	l := mustRun(t, map[string]any{"unknown_ids": 100, "retry": "fixed", "retry_delay_ms": 10, "errors": "raise"})
	res := l.call(t)
	if res.Outcome != "not-found" || res.Attempts != 1 {
		t.Errorf("call for an unknown id = %+v, want not-found after 1 attempt", res)
	}
	l.wantCounters(t, map[string]int64{"retries": 0, "not-found": 1})
}

func TestBreakerOpensThenRejectsWithoutCalling(t *testing.T) {
	l := mustRun(t, map[string]any{
		"error_rate": 100, "breaker": true, "breaker_failures": 3, "breaker_open_ms": 60000, "errors": "raise",
	})
	for i := range 8 {
		res := l.call(t)
		steps := strings.Join(l.events.steps(res.MsgID), " ")
		switch {
		case i < 3:
			if res.Reason != "503 Service Unavailable" || steps != "request#1 response#1 result#1" {
				t.Errorf("call %d = %+v with hops %s, want a 503 from product-service", i+1, res, steps)
			}
		default:
			if res.Outcome != "failed" || res.Reason != "circuit breaker open" || steps != "reject#1 result#1" {
				t.Errorf("call %d = %+v with hops %s, want rejected by the open breaker", i+1, res, steps)
			}
		}
	}
	l.wantCounters(t, map[string]int64{
		"product-service.received": 3, "server-errors": 3, "rejected": 5, "attempts": 8, "failed": 8, "calls": 8,
	})
	if got := l.events.states("breaker"); got[len(got)-1] != "open" || slices.Index(got, "open") != len(got)-1 {
		t.Errorf("breaker states %v, want to end in one open", got)
	}
	if st := l.Stats().Nodes["breaker"]; st.State != "open" || !slices.ContainsFunc(st.Badges(), func(b string) bool { return strings.HasPrefix(b, "calls blocked") }) {
		t.Errorf("breaker node = %+v, want open with \"calls blocked\" beside it", st)
	}
}

func TestBreakerHalfOpenLetsOneTrialCallThrough(t *testing.T) {
	l := mustRun(t, map[string]any{
		"error_rate": 100, "breaker": true, "breaker_failures": 1, "breaker_open_ms": 500, "errors": "raise",
	})
	if res := l.call(t); res.Reason != "503 Service Unavailable" {
		t.Fatalf("first call = %+v, want a 503", res)
	}
	mustSet(t, l, "error_rate", 0) // product-service recovers; the breaker keeps its state
	waitFor(t, "the breaker to turn half-open", func() bool { return l.Stats().Nodes["breaker"].State == "half-open" })
	if res := l.call(t); res.Outcome != "ok" {
		t.Errorf("trial call = %+v, want ok", res)
	}
	got := l.events.states("breaker")
	if want := []string{"open", "half-open", "closed"}; len(got) < 3 || !slices.Equal(got[len(got)-3:], want) {
		t.Errorf("breaker states %v, want to end with %v", got, want)
	}
}

func TestBreakerCountsNotFoundAsSuccess(t *testing.T) {
	l := mustRun(t, map[string]any{"unknown_ids": 100, "breaker": true, "breaker_failures": 1, "errors": "raise"})
	for range 3 {
		if res := l.call(t); res.Outcome != "not-found" {
			t.Errorf("call = %+v, want not-found", res)
		}
	}
	l.wantCounters(t, map[string]int64{"rejected": 0, "product-service.received": 3})
	if st := l.Stats().Nodes["breaker"].State; st != "closed" {
		t.Errorf("breaker = %q after 404s, want closed", st)
	}
}

func TestSwallowedErrorsAllLookTheSame(t *testing.T) {
	cases := []struct {
		name          string
		knobs         map[string]any
		raised        string // outcome when raised
		raisedReason  string
		ledgerCounter string // where the ledger puts it either way
	}{
		{"unknown id", map[string]any{"unknown_ids": 100}, "not-found", "", "not-found"},
		{"erroring", map[string]any{"error_rate": 100}, "failed", "503 Service Unavailable", "failed"},
		{"down", map[string]any{"up": false}, "failed", "connection refused", "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := mustRun(t, tc.knobs) // errors are swallowed by default, as in the article

			res := l.call(t)
			if res.Outcome != "none" || res.Reason != "" || res.Product != nil {
				t.Errorf("swallowed: %+v, want none and no reason", res)
			}
			hops := l.events.of(res.MsgID)
			if last := hops[len(hops)-1]; last.Kind != flow.KindResult || last.Detail.Outcome != "none" || last.Detail.Error != "" {
				t.Errorf("swallowed result event = %+v", last)
			}
			l.wantCounters(t, map[string]int64{"none-returned": 1, tc.ledgerCounter: 1})

			mustSet(t, l, "errors", "raise")
			res = l.call(t)
			if res.Outcome != tc.raised || res.Reason != tc.raisedReason {
				t.Errorf("raised: %+v, want %s %q", res, tc.raised, tc.raisedReason)
			}
			l.wantCounters(t, map[string]int64{"none-returned": 1, tc.ledgerCounter: 2})
		})
	}
}

func TestSuccessIsOKEitherWay(t *testing.T) {
	l := mustRun(t, nil)
	for _, mode := range []string{"swallow", "raise"} {
		mustSet(t, l, "errors", mode)
		res := l.call(t)
		if res.Outcome != "ok" || res.Product == nil || res.Product.ID < 100 || res.Product.ID > 199 || res.Product.Name == "" {
			t.Errorf("%s: %+v, want ok with a product", mode, res)
		}
		hops := l.events.of(res.MsgID)
		if len(hops) != 3 || hops[0].Detail.Payload != "GET /products/"+strconv.Itoa(res.Product.ID) ||
			hops[1].Kind != flow.KindResponse || hops[1].Detail.Status != 200 {
			t.Errorf("%s: hops %+v, want request, 200 response, result", mode, hops)
		}
	}
	l.wantCounters(t, map[string]int64{"ok": 2, "none-returned": 0, "product-service.received": 2})
}
