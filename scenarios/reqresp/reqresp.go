// Package reqresp runs the article's synchronous request-response pattern for
// real: order-service calls product-service (GET /products/{id}) over HTTP on
// loopback, and every attempt, timeout, retry and circuit-breaker decision
// becomes a flow event.
//
// The defaults are the article's code: no timeout, no retry, no breaker, and
// every failure printed and turned into None. The knobs add the fixes one at a
// time, so a learner can watch what each one changes.
package reqresp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"flowlab/flow"
)

// The node ids the events and the view share.
const (
	orderService   = "order-service"
	productService = "product-service"
	breakerNode    = "breaker"
	outsideClient  = "outside-client"
)

// msgHeader carries order-service's message id on every attempt, so that
// product-service can tell its calls from a learner's own requests.
const msgHeader = "X-Flowlab-Msg"

// Config is what the server gives the scenario.
type Config struct {
	ProductAddr string        // listen address of product-service, e.g. ":5000" or "127.0.0.1:0"
	Emit        *flow.Emitter // where events go
}

// Scenario is order-service, product-service and the policy between them.
type Scenario struct {
	events  *flow.Emitter
	product *productServer
	client  *http.Client
	baseURL string // where order-service finds product-service

	setMu       sync.Mutex // one Set at a time, so knob changes never interleave
	current     atomic.Pointer[settings]
	breakerMu   sync.Mutex // orders a breaker swap with the breaker's own state events
	breaker     atomic.Pointer[breaker]
	rateChanged chan struct{} // wakes the load loop when the offered rate changes
	workers     chan struct{} // one token per call the load loop runs, at most maxWorkers

	callSeq    atomic.Uint64 // for req-N
	outsideSeq atomic.Uint64 // for ext-N
	tally      tally
	recent     recentCalls
	point      atomic.Pointer[flow.Point]
	ran        atomic.Bool
}

var _ flow.Scenario = (*Scenario)(nil)

// Open binds product-service's listener now, so that a port in use is reported
// at startup (the error wraps the net error), and starts nothing else.
func Open(cfg Config) (*Scenario, error) {
	if cfg.Emit == nil {
		return nil, flow.Errorf(flow.Internal, "request-response needs an emitter")
	}
	s := &Scenario{events: cfg.Emit, rateChanged: make(chan struct{}, 1), workers: make(chan struct{}, maxWorkers)}
	defaults := articleSettings
	s.current.Store(&defaults)
	s.point.Store(&flow.Point{Time: time.Now(), Success: 100})
	product, err := newProductServer(cfg.ProductAddr, s.productHandler())
	if err != nil {
		return nil, fmt.Errorf("product-service cannot listen on %s: %w", cfg.ProductAddr, err)
	}
	s.product = product
	s.baseURL = "http://" + dialAddr(s.product.addr)
	// One transport for every call, as one requests session would be: a roomy
	// pool so that piled-up calls each keep a socket, and no client-level
	// timeout, because the timeout is a knob.
	s.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil, // product-service is local: no proxy from the environment
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
	return s, nil
}

// ProductAddr is the address product-service is bound to, host:port.
func (s *Scenario) ProductAddr() string { return s.product.addr }

// Name is the scenario's id in URLs and commands.
func (s *Scenario) Name() string { return "request-response" }

// Title is the scenario's name on the page.
func (s *Scenario) Title() string { return "Request-response (HTTP)" }

// Summary says in one sentence what the learner is looking at.
func (s *Scenario) Summary() string {
	return "order-service calls product-service over real HTTP, as in the article: slow it, hang it, " +
		"break it or take it down, then add a timeout, retries and a circuit breaker and watch what the caller gets."
}

// Run serves product-service and drives order-service's load until ctx ends,
// then closes everything and returns once every goroutine it started is done.
// A scenario runs once.
func (s *Scenario) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return flow.Errorf(flow.Internal, "request-response has already run")
	}
	s.product.serve()
	var calls sync.WaitGroup
	s.drive(ctx, &calls)
	calls.Wait() // ctx is done, so every call's request is cancelled and returns
	s.product.stop()
	s.client.CloseIdleConnections()
	return nil
}

// maxWorkers is how many calls order-service runs at once, as a threaded server
// has a pool of threads. It bounds what a product-service that never answers
// can hold: each waiting call is a goroutine and a socket on each side. While
// every worker waits, the next order is turned away.
const maxWorkers = 500

// drive starts calls at the offered rate, each on a worker (a goroutine) of
// its own so that blocked calls pile up as they would in a threaded caller,
// and takes the chart's sample once a second.
func (s *Scenario) drive(ctx context.Context, calls *sync.WaitGroup) {
	chart := time.NewTicker(time.Second)
	defer chart.Stop()
	next := time.NewTimer(0)
	defer next.Stop()
	due := time.Now()
	last := s.tally.ledger().mark(due)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-chart.C:
			last = s.sample(now, last)
		case <-s.rateChanged:
			due = time.Now()
			next.Reset(0)
		case now := <-next.C:
			rate := s.settings().rate
			if rate == 0 {
				next.Reset(time.Second) // idle; a rate change wakes the loop sooner
				continue
			}
			select {
			case s.workers <- struct{}{}:
				calls.Add(1)
				go func() {
					defer calls.Done()
					defer func() { <-s.workers }()
					s.Call(ctx)
				}()
			default:
				s.tally.turnedAway.Add(1)
			}
			due = due.Add(time.Second / time.Duration(rate))
			if due.Before(now.Add(-time.Second)) {
				due = now // after a stall, carry on at the rate rather than burst to catch up
			}
			next.Reset(time.Until(due))
		}
	}
}

// dialAddr turns a bound address into one a client can dial: a wildcard host
// becomes loopback.
func dialAddr(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
