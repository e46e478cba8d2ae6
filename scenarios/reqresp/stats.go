package reqresp

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
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
	blocked := t.blocked.Load()

	order := flow.NodeState{State: "ok", Badges: []string{"in flight " + itoa(l.inFlight)}}
	if blocked > 0 {
		order.Badges = append(order.Badges, "blocked on socket "+itoa(blocked))
	}
	// More calls waiting than it starts in a second: each waits over a second
	// on average (Little's law), so they are piling up.
	if blocked > int64(max(c.rate, 1)) {
		order.State = "blocked"
	}
	if c.timeoutMS == 0 {
		order.Badges = append(order.Badges, "no timeout")
	}

	product := flow.NodeState{State: "up"}
	switch {
	case !c.up:
		product.State = "down"
	case c.errorRate > 0:
		product.State = "erroring"
	case c.latencyMS > 0:
		product.State = "slow"
	}
	if c.latencyMS > 0 {
		product.Badges = append(product.Badges, fmt.Sprintf("latency %d ms", c.latencyMS))
	}
	if c.errorRate > 0 {
		product.Badges = append(product.Badges, fmt.Sprintf("errors %d %%", c.errorRate))
	}

	outside := flow.NodeState{State: "idle"}
	if time.Since(time.Unix(0, t.outsideAt.Load())) < 5*time.Second {
		outside.State = "active"
	}
	if n := t.outside.Load(); n > 0 {
		outside.Badges = []string{"requests " + itoa(n)}
	}

	counter := func(name, label string, v int64) flow.Counter {
		return flow.Counter{Name: name, Label: label, Value: v}
	}
	return flow.Stats{
		Nodes: map[string]flow.NodeState{
			orderService:   order,
			breakerNode:    s.breaker.Load().state(),
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
	noneReturned, outside, received                              atomic.Int64
	blocked                                                      atomic.Int64 // attempts waiting for product-service's answer
	outsideAt                                                    atomic.Int64 // unix nanoseconds of the latest outside request
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

// latencySpan is how far back the chart's percentiles look.
const latencySpan = 5 * time.Second

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
	p.P50MS, p.P99MS = s.latencies.percentiles(now.Add(-latencySpan))
	s.point.Store(&p)
	return cur
}

// latencyWindow keeps the end-to-end latencies of the most recent calls, in a
// ring big enough for the span at the highest rate.
type latencyWindow struct {
	mu   sync.Mutex
	ring [4096]latencySample
	next int
}

type latencySample struct {
	at time.Time // when the call ended
	ms float64
}

func (w *latencyWindow) add(at time.Time, d time.Duration) {
	w.mu.Lock()
	w.ring[w.next] = latencySample{at: at, ms: ms(d)}
	w.next = (w.next + 1) % len(w.ring)
	w.mu.Unlock()
}

// percentiles are the nearest-rank p50 and p99 of the calls that ended after
// since; zero when there were none.
func (w *latencyWindow) percentiles(since time.Time) (p50, p99 float64) {
	w.mu.Lock()
	var recent []float64
	for _, s := range w.ring {
		if s.at.After(since) {
			recent = append(recent, s.ms)
		}
	}
	w.mu.Unlock()
	if len(recent) == 0 {
		return 0, 0
	}
	slices.Sort(recent)
	rank := func(p float64) float64 { return recent[int(math.Ceil(p*float64(len(recent))))-1] }
	return rank(0.50), rank(0.99)
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
