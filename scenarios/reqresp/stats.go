package reqresp

import (
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"flowlab/flow"
)

// View is the topology: order-service on the left, its breaker on the edge,
// product-service on the right and a learner's own client below.
func (s *Scenario) View() flow.View {
	note, curl := addressNotes(s.product.addr)
	return flow.View{
		Width: 960, Height: 500,
		Nodes: []flow.Node{
			{ID: orderService, Label: "order-service", Kind: "service", X: 150, Y: 160, Note: "fetch_product(123)"},
			{ID: breakerNode, Label: "circuit breaker", Kind: "gate", X: 470, Y: 160},
			{ID: productService, Label: "product-service", Kind: "service", X: 790, Y: 160, Note: note},
			{ID: outsideClient, Label: "your code (requests.get)", Kind: "client", X: 480, Y: 400, Note: curl},
		},
		Edges: []flow.Edge{
			{From: orderService, To: productService, Label: "GET /products/{id}"},
			{From: outsideClient, To: productService},
		},
	}
}

// Stats are the exact counters, the node states and the newest chart point.
// It only reads atomics and two small locks: the page calls it every frame.
func (s *Scenario) Stats() flow.Stats {
	c := s.settings()
	l := s.tally.ledger()
	t := &s.tally
	blocked, old, oldTimeouts := t.waiting.count(c.timeoutMS)

	state, recentCalls, recentFailed := s.recent.callerState(time.Now())
	order := flow.NodeState{State: state, Facts: []flow.Fact{
		flow.Count("in-flight", l.inFlight, "in flight %d"),
		flow.Count("blocked", blocked, "blocked on socket %d").When(blocked > 0),
		timeoutFact(c.timeoutMS),
		flow.Count("blocked-old-timeout", old, oldTimeoutFormat(oldTimeouts)).When(old > 0),
		flow.Count("turned-away", t.turnedAway.Load(), fmt.Sprintf("all %d workers busy: turned away %%d", maxWorkers)).
			When(len(s.workers) == maxWorkers),
		flow.Count("recent-calls", recentCalls, ""),
		flow.Count("recent-failed", recentFailed, fmt.Sprintf("failed %%d of %d in %g s", recentCalls, recentSpan.Seconds())).
			When(recentFailed > 0),
	}}
	// More calls waiting than it starts in a second: each waits over a second
	// on average (Little's law), so they are piling up, and waiting is what
	// its callers get now.
	if blocked > int64(max(c.rate, 1)) {
		order.State = "blocked"
	}

	holding := t.holding.Load()
	product := flow.NodeState{State: c.productWord(), Facts: []flow.Fact{
		flow.Flag("up", c.up, ""), // the state word already says down
		flow.Flag("hanging", c.hang, "never answers"),
		flow.Count("holding", holding, "holding %d requests").When(holding > 0),
		flow.Measure("latency-ms", float64(c.latencyMS), "latency %.0f ms").When(c.latencyMS > 0),
		flow.Count("error-rate-percent", int64(c.errorRate), "errors %d %%").When(c.errorRate > 0),
	}}

	outside := flow.NodeState{State: "idle"}
	if time.Since(time.Unix(0, t.outsideAt.Load())) < 5*time.Second {
		outside.State = "active"
	}
	n := t.outside.Load()
	outside.Facts = []flow.Fact{flow.Count("requests", n, "requests %d").When(n > 0)}

	counter := func(name, label string, v int64) flow.Counter {
		return flow.Counter{Name: name, Label: label, Value: v}
	}
	return flow.Stats{
		Nodes: map[string]flow.NodeState{
			orderService:   order,
			breakerNode:    s.breaker.Load().state(c),
			productService: product,
			outsideClient:  outside,
		},
		Counters: []flow.Counter{
			counter("calls", "calls", l.calls),
			counter("attempts", "attempts", t.attempts.Load()),
			counter("retries", "retries", t.retries.Load()),
			counter("ok", "ok", l.ok),
			counter("not-found", "not found (404)", l.notFound),
			counter("failed", "failed", l.failed),
			counter("timeouts", "timeouts", t.timeouts.Load()),
			counter("refused", "connection refused or dropped", t.refused.Load()),
			counter("server-errors", "5xx answers", t.serverErrors.Load()),
			counter("rejected", "rejected by the breaker", t.rejected.Load()),
			counter("none-returned", "returned None", t.noneReturned.Load()),
			counter("turned-away", "orders turned away: every worker busy", t.turnedAway.Load()),
			counter("in-flight", "in flight", l.inFlight),
			counter("blocked", "blocked on socket", blocked),
			counter("outside-requests", "requests from your code", t.outside.Load()),
			counter("product-service.received", "requests product-service received", t.received.Load()),
		},
		Ledger: flow.Ledger{
			Total: counter("calls", "calls", l.calls),
			Parts: []flow.Counter{
				counter("ok", "ok", l.ok),
				counter("not-found", "not found", l.notFound),
				counter("failed", "failed", l.failed),
				counter("in-flight", "in flight", l.inFlight),
			},
		},
		Series: *s.point.Load(),
	}
}

// tally holds the exact counts. The ledger's counts change together under
// one lock, so that calls = ok + not found + failed + in flight at every
// instant, even while calls run; the rest are independent atomics.
type tally struct {
	mu  sync.Mutex
	led ledgerCounts

	attempts, retries, timeouts, refused, serverErrors, rejected atomic.Int64
	noneReturned, outside, received, turnedAway                  atomic.Int64
	holding                                                      atomic.Int64 // requests a hanging product-service holds unanswered
	outsideAt                                                    atomic.Int64 // unix nanoseconds of the latest outside request
	waiting                                                      waits        // attempts waiting for product-service's answer
}

// waits counts the attempts waiting for product-service's answer by the
// timeout each started with, which it keeps until it ends.
type waits struct {
	mu        sync.Mutex
	total     int64
	byTimeout map[int]int64 // ms, 0 for none
}

func (w *waits) start(timeoutMS int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byTimeout == nil {
		w.byTimeout = map[int]int64{}
	}
	w.total++
	w.byTimeout[timeoutMS]++
}

func (w *waits) end(timeoutMS int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total--
	if w.byTimeout[timeoutMS]--; w.byTimeout[timeoutMS] == 0 {
		delete(w.byTimeout, timeoutMS)
	}
}

// count is every attempt waiting, those of them under another timeout than
// current, and which timeouts those are.
func (w *waits) count(current int) (total, old int64, oldTimeouts []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ms, n := range w.byTimeout {
		if ms != current {
			old += n
			oldTimeouts = append(oldTimeouts, ms)
		}
	}
	return w.total, old, oldTimeouts
}

// ledgerCounts are the ledger's numbers at one instant. A swallowed failure
// still counts as what it was: None is what the caller saw, not what happened.
type ledgerCounts struct {
	calls, ok, notFound, failed, inFlight int64
}

func (t *tally) begin() {
	t.mu.Lock()
	t.led.calls++
	t.led.inFlight++
	t.mu.Unlock()
}

func (t *tally) end(outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.led.inFlight--
	switch outcome {
	case outcomeOK:
		t.led.ok++
	case outcomeNotFound:
		t.led.notFound++
	default:
		t.led.failed++
	}
}

func (t *tally) ledger() ledgerCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.led
}

// chartMark is where the counts stood at a chart sample.
type chartMark struct {
	at                   time.Time
	completed, succeeded int64
}

func (l ledgerCounts) mark(at time.Time) chartMark {
	return chartMark{at: at, completed: l.ok + l.notFound + l.failed, succeeded: l.ok + l.notFound}
}

// recentSpan is what "recent" means on the page: the calls that ended in the
// last 5 s. The chart's p50 and p99 and order-service's state both read it.
const recentSpan = 5 * time.Second

// sample computes the chart point for the second since prev.
func (s *Scenario) sample(now time.Time, prev chartMark) chartMark {
	l := s.tally.ledger()
	cur := l.mark(now)
	done := cur.completed - prev.completed
	p := flow.Point{Time: now, Success: 100, Depth: float64(l.inFlight)}
	if secs := now.Sub(prev.at).Seconds(); secs > 0 {
		p.Throughput = float64(done) / secs
	}
	if done > 0 {
		p.Success = 100 * float64(cur.succeeded-prev.succeeded) / float64(done)
	}
	p.P50MS, p.P99MS = s.recent.percentiles(now.Add(-recentSpan))
	s.point.Store(&p)
	return cur
}

// recentCalls keeps the most recent calls that ended, in a ring big enough
// for recentSpan at the highest rate.
type recentCalls struct {
	mu   sync.Mutex
	ring [4096]endedCall
	next int
}

// endedCall is one call as it ended.
type endedCall struct {
	at        time.Time
	ms        float64 // end to end
	failed    bool    // a timeout, a refused or dropped connection, a 5xx, the breaker
	swallowed bool    // failed, and the caller got None instead of an error
}

func (w *recentCalls) add(c endedCall) {
	w.mu.Lock()
	w.ring[w.next] = c
	w.next = (w.next + 1) % len(w.ring)
	w.mu.Unlock()
}

// since returns the calls that ended after t. Every frame asks, so it walks
// back from the newest call only as far as t, not the whole ring. Calls are
// added in the order they end, give or take the moment between taking the
// time and the lock, so it goes on a second past t before it stops.
func (w *recentCalls) since(t time.Time) []endedCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []endedCall
	stop := t.Add(-outOfOrder)
	for i := range len(w.ring) {
		c := w.ring[(w.next-1-i+len(w.ring))%len(w.ring)]
		if !c.at.After(stop) {
			break // older still, or a place never used
		}
		if c.at.After(t) {
			out = append(out, c)
		}
	}
	return out
}

// outOfOrder is how much earlier than the call before it a call may be added.
const outOfOrder = time.Second

// percentiles are the nearest-rank p50 and p99 of the calls that ended after
// since; zero when there were none.
func (w *recentCalls) percentiles(since time.Time) (p50, p99 float64) {
	var recent []float64
	for _, c := range w.since(since) {
		recent = append(recent, c.ms)
	}
	if len(recent) == 0 {
		return 0, 0
	}
	slices.Sort(recent)
	rank := func(p float64) float64 { return recent[int(math.Ceil(p*float64(len(recent))))-1] }
	return rank(0.50), rank(0.99)
}

// callerState is what order-service's callers got from its recent calls:
// "ok" when none failed; when some did, "failing" if the latest failure was
// raised to them, "returns None" if it was swallowed. It also returns the
// recent calls and failures the state is judged on.
func (w *recentCalls) callerState(now time.Time) (state string, calls, failed int64) {
	state = "ok"
	var latest time.Time
	for _, c := range w.since(now.Add(-recentSpan)) {
		calls++
		if !c.failed {
			continue
		}
		failed++
		if c.at.After(latest) {
			latest, state = c.at, "failing"
			if c.swallowed {
				state = "returns None"
			}
		}
	}
	return state, calls, failed
}

// addressNotes are product-service's address as the diagram shows it and the
// curl command that reaches it.
func addressNotes(bound string) (note, curl string) {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound, ""
	}
	note, target := bound, bound
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		note, target = ":"+port, "localhost:"+port
	}
	return note, "curl http://" + target + "/products/123"
}

// timeoutFact is how long one attempt may wait, drawn only when it is 0:
// waiting for ever is the article's flaw.
func timeoutFact(ms int) flow.Fact {
	f := flow.Count("timeout-ms", int64(ms), "")
	if ms == 0 {
		f.Badge = "no timeout"
	}
	return f
}

// oldTimeoutFormat says what the calls waiting under an earlier timeout keep,
// so that a learner who sets a timeout sees why the pile does not clear.
func oldTimeoutFormat(timeouts []int) string {
	switch {
	case len(timeouts) > 1:
		return "%d waiting keep old timeouts"
	case len(timeouts) == 1 && timeouts[0] > 0:
		return fmt.Sprintf("%%d waiting keep a %d ms timeout", timeouts[0])
	}
	return "%d waiting keep no timeout"
}
