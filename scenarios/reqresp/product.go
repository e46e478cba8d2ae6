package reqresp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"flowlab/flow"
)

// productServer is product-service: a real HTTP server on one fixed address that
// can be taken down (its port closes, its connections drop) and brought back
// on the same address.
type productServer struct {
	handler http.Handler
	addr    string // the bound address, kept so that "up" listens on the same port; never changes

	mu      sync.Mutex
	ln      net.Listener // nil while down
	srv     *http.Server // nil while not serving
	cancel  context.CancelFunc
	serving bool // between Run's start and its end
	stopped bool // Run has ended: nothing listens any more
	work    sync.WaitGroup
}

// newProductServer binds product-service's listener; the address it resolves
// is fixed from then on.
func newProductServer(addr string, handler http.Handler) (*productServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &productServer{handler: handler, addr: ln.Addr().String(), ln: ln}, nil
}

// serve starts answering on the listener, if product-service is up.
func (p *productServer) serve() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serving = true
	if p.ln != nil {
		p.start()
	}
}

// setUp takes product-service down or brings it back, and reports whether
// that changed anything.
func (p *productServer) setUp(up bool) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.stopped:
		return false, flow.Errorf(flow.Unavailable, "product-service has stopped with the lab")
	case up == (p.ln != nil):
		return false, nil
	case !up:
		p.halt()
		return true, nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return false, flow.Errorf(flow.Unavailable, "product-service cannot listen on %s again: %v", p.addr, err)
	}
	p.ln = ln
	if p.serving {
		p.start()
	}
	return true, nil
}

// stop closes everything and waits for the server and every connection it
// accepted to finish.
func (p *productServer) stop() {
	p.mu.Lock()
	p.serving, p.stopped = false, true
	p.halt()
	p.mu.Unlock()
	p.work.Wait()
}

// start runs a fresh http.Server on p.ln; a closed server cannot serve again,
// so every "up" gets a new one. Callers hold p.mu.
func (p *productServer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           p.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests derive from ctx, so that a handler sleeping out its latency
		// wakes when product-service goes down.
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Counting connections lets stop wait for their goroutines. New ones
		// are only counted inside Serve, while its own count is held.
		ConnState: func(_ net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				p.work.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.work.Done()
			}
		},
	}
	p.srv, p.cancel = srv, cancel
	p.work.Add(1)
	go func(ln net.Listener) {
		defer p.work.Done()
		srv.Serve(ln) // returns ErrServerClosed once halted
	}(p.ln)
}

// halt closes the listener and every open connection: new calls are refused,
// calls in progress fail. Callers hold p.mu.
func (p *productServer) halt() {
	if p.srv != nil {
		p.srv.Close()
		p.cancel()
		p.srv = nil
	}
	if p.ln != nil {
		p.ln.Close() // also when Serve has not yet taken it over
		p.ln = nil
	}
}

// productHandler is product-service's API. Requests without order-service's
// message id come from outside flowlab (a learner's curl or requests.get):
// they get an id of their own and their own events.
func (s *Scenario) productHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", s.getProduct)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{"no such path: try GET /products/123"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.tally.received.Add(1)
		if r.Header.Get(msgHeader) != "" {
			mux.ServeHTTP(w, r)
			return
		}
		s.serveOutside(mux, w, r)
	})
}

// getProduct answers GET /products/{id} after the latency knob's delay, or
// fails on purpose at the error rate.
func (s *Scenario) getProduct(w http.ResponseWriter, r *http.Request) {
	c := s.settings()
	if c.hang {
		if !s.hold(r.Context(), c.release) {
			return // the caller gave up or the service went down
		}
		c = s.settings() // answered as it is now set
	}
	if !sleep(r.Context(), millis(c.latencyMS)) {
		return // the caller gave up or the service went down: nobody is listening
	}
	if rand.IntN(100) < c.errorRate {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"product-service is failing (injected error)"})
		return
	}
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("product id must be a number, not %q", raw)})
		return
	}
	p, ok := lookupProduct(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no product with id %d", id)})
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// hold keeps a request unanswered until the hang ends (true) or the request
// does (false): when its caller hangs up, product-service goes down or the
// lab stops. What it can hold from order-service is bounded by maxWorkers.
func (s *Scenario) hold(ctx context.Context, release <-chan struct{}) bool {
	s.tally.holding.Add(1)
	defer s.tally.holding.Add(-1)
	select {
	case <-release:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveOutside answers an outside client and emits its request and response.
func (s *Scenario) serveOutside(h http.Handler, w http.ResponseWriter, r *http.Request) {
	s.tally.outside.Add(1)
	s.tally.outsideAt.Store(time.Now().UnixNano())
	msg := "ext-" + strconv.FormatUint(s.outsideSeq.Add(1), 10)
	s.events.Emit(flow.Event{
		Kind: flow.KindRequest, From: outsideClient, To: productService, MsgID: msg, Attempt: 1,
		Detail: flow.Detail{Payload: shorten(r.Method + " " + r.URL.RequestURI()), External: true},
	})
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	h.ServeHTTP(rec, r)
	if rec.status == 0 {
		s.events.Emit(flow.Event{
			Kind: flow.KindError, From: productService, To: outsideClient, MsgID: msg, Attempt: 1,
			Detail: flow.Detail{Error: "no answer: the connection closed", LatencyMS: ms(time.Since(start)), External: true},
		})
		return
	}
	s.events.Emit(flow.Event{
		Kind: flow.KindResponse, From: productService, To: outsideClient, MsgID: msg, Attempt: 1,
		Detail: flow.Detail{Status: rec.status, LatencyMS: ms(time.Since(start)), External: true},
	})
}

// Product is what product-service returns.
type Product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

// The catalogue: ids 100–199, a style (tens) and a kind (units) each, so that
// 123 is a "Pro Mechanical Keyboard".
var (
	productStyles = [10]string{"Classic", "Compact", "Pro", "Travel", "Eco", "Studio", "Mini", "Ultra", "Everyday", "Deluxe"}
	productKinds  = [10]string{"Desk Lamp", "Notebook", "Water Bottle", "Mechanical Keyboard", "Backpack",
		"Coffee Mug", "Headphones", "Phone Stand", "USB-C Cable", "Wireless Mouse"}
	kindPrices = [10]float64{34, 6, 18, 89, 59, 12, 129, 19, 9, 29}
)

func lookupProduct(id int) (Product, bool) {
	if id < 100 || id > 199 {
		return Product{}, false
	}
	style, kind := (id-100)/10, id%10
	price := math.Floor(kindPrices[kind]*(1+0.1*float64(style))) + 0.99
	return Product{ID: id, Name: productStyles[style] + " " + productKinds[kind], Price: price}, true
}

// apiError is product-service's JSON error body.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) // a failed write means the caller has gone
}

// statusRecorder remembers the status an outside client was sent.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// shorten keeps a learner's odd URL from flooding the event log.
func shorten(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
