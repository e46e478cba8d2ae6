package reqresp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"flowlab/flow"
)

// Result is what order-service's code finally got from one call.
type Result struct {
	MsgID string // req-N, on every event of the call
	// Outcome is "ok", "not-found" or "failed" when errors are raised; when
	// they are swallowed, as in the article, every failure is "none".
	Outcome  string
	Product  *Product      // when Outcome is "ok"
	Reason   string        // why it failed, for "failed" (a swallowed error leaves none)
	Attempts int           // attempts made, rejected ones included
	Latency  time.Duration // end to end: every attempt and every wait between them
}

// The outcomes of a call.
const (
	outcomeOK       = "ok"
	outcomeNotFound = "not-found"
	outcomeFailed   = "failed"
	outcomeNone     = "none" // the article's print-and-return-None
)

// Call makes one order-service call to product-service with the current
// policy (timeout, retries, breaker, error handling) and emits all its events.
// Each attempt reads the knobs afresh, so a change applies to the next attempt.
// product-service answers only while Run runs.
func (s *Scenario) Call(ctx context.Context) Result {
	res := Result{MsgID: "req-" + strconv.FormatUint(s.callSeq.Add(1), 10)}
	path := "/products/" + strconv.Itoa(s.settings().pickProduct())
	start := time.Now()
	s.tally.begin()
	var t try
	for {
		res.Attempts++
		c := s.settings()
		t = s.attempt(ctx, res.MsgID, res.Attempts, path, c)
		if c.retry == retryNone || !t.failed() || res.Attempts >= c.maxAttempts || ctx.Err() != nil {
			break
		}
		delay := c.backoff(res.Attempts)
		s.tally.retries.Add(1)
		s.events.Emit(flow.Event{
			Kind: flow.KindRetry, From: orderService, To: orderService, MsgID: res.MsgID, Attempt: res.Attempts + 1,
			Detail: flow.Detail{DelayMS: ms(delay)},
		})
		if !sleep(ctx, delay) {
			t = try{kind: flow.KindError, err: "cancelled"}
			break
		}
	}
	end := time.Now()
	res.Latency = end.Sub(start)

	// The ledger records what really happened; the outcome is what the
	// caller's code can see, which the error handling decides.
	switch {
	case t.product != nil:
		res.Outcome, res.Product = outcomeOK, t.product
	case t.status == http.StatusNotFound:
		res.Outcome = outcomeNotFound
	default:
		res.Outcome, res.Reason = outcomeFailed, t.reason()
	}
	s.tally.end(res.Outcome)
	ended := endedCall{at: end, ms: ms(res.Latency), failed: res.Outcome == outcomeFailed}
	if res.Outcome != outcomeOK && s.settings().errors == errorsSwallow {
		res.Outcome, res.Reason = outcomeNone, ""
		s.tally.noneReturned.Add(1)
		ended.swallowed = ended.failed
	}
	s.recent.add(ended)
	s.events.Emit(flow.Event{
		Kind: flow.KindResult, From: orderService, MsgID: res.MsgID, Attempt: res.Attempts,
		Detail: flow.Detail{Outcome: res.Outcome, LatencyMS: ms(res.Latency), Error: res.Reason},
	})
	return res
}

// attempt makes attempt n through the circuit breaker, when there is one: an
// open breaker rejects it without any HTTP call.
func (s *Scenario) attempt(ctx context.Context, msg string, n int, path string, c *settings) try {
	s.tally.attempts.Add(1)
	b := s.breaker.Load()
	if b == nil {
		return s.send(ctx, msg, n, path, c)
	}
	t, err := b.cb.Execute(func() (try, error) {
		t := s.send(ctx, msg, n, path, c)
		switch {
		case ctx.Err() != nil:
			return t, errCancelled
		case t.failed():
			return t, errAttemptFailed
		}
		return t, nil // a 404 is a healthy answer
	})
	if reason, ok := rejection(err); ok {
		s.tally.rejected.Add(1)
		t = try{kind: flow.KindReject, err: reason}
		s.events.Emit(flow.Event{
			Kind: flow.KindReject, From: orderService, To: productService, MsgID: msg, Attempt: n,
			Detail: flow.Detail{Error: t.err},
		})
	}
	return t
}

// send is one real HTTP request, with the timeout if one is set. The timeout
// is fixed when the attempt starts, as requests.get's timeout= is: a new
// value applies to the attempts that start after it.
func (s *Scenario) send(ctx context.Context, msg string, n int, path string, c *settings) try {
	s.events.Emit(flow.Event{
		Kind: flow.KindRequest, From: orderService, To: productService, MsgID: msg, Attempt: n,
		Detail: flow.Detail{Payload: "GET " + path},
	})
	start := time.Now()
	actx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeoutMS > 0 {
		actx, cancel = context.WithTimeout(ctx, millis(c.timeoutMS))
	}
	defer cancel()
	s.tally.waiting.start(c.timeoutMS)
	status, product, err := s.get(actx, msg, path)
	s.tally.waiting.end(c.timeoutMS)
	took := ms(time.Since(start))

	var t try
	switch {
	case err == nil:
		t = try{kind: flow.KindResponse, status: status, product: product}
		if status >= 500 {
			s.tally.serverErrors.Add(1)
		}
		s.events.Emit(flow.Event{
			Kind: flow.KindResponse, From: productService, To: orderService, MsgID: msg, Attempt: n,
			Detail: flow.Detail{Status: status, LatencyMS: took},
		})
		return t
	case ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded):
		t = try{kind: flow.KindTimeout, err: fmt.Sprintf("timed out after %d ms", c.timeoutMS)}
		s.tally.timeouts.Add(1)
	case ctx.Err() != nil:
		t = try{kind: flow.KindError, err: "cancelled"}
	default:
		t = try{kind: flow.KindError, err: transportError(err)}
		s.tally.refused.Add(1)
	}
	s.events.Emit(flow.Event{
		Kind: t.kind, From: orderService, To: productService, MsgID: msg, Attempt: n,
		Detail: flow.Detail{Error: t.err, LatencyMS: took},
	})
	return t
}

// get is the article's requests.get: the status, and the product for a 200.
func (s *Scenario) get(ctx context.Context, msg, path string) (int, *Product, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(msgHeader, msg)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, err
	}
	var p Product
	if err := json.Unmarshal(body, &p); err != nil {
		return resp.StatusCode, nil, nil // a 200 without a product: failed, not retried
	}
	return resp.StatusCode, &p, nil
}

// try is what one attempt got.
type try struct {
	kind    flow.Kind // KindResponse, KindTimeout, KindError or KindReject
	status  int       // for a response
	product *Product  // for a 200 with a product in it
	err     string    // what went wrong, in a few words
}

// failed says whether the attempt counts against the breaker and is worth a
// retry: a timeout, a transport error or a 5xx. A 404 is an answer, and a
// rejection means the breaker wants no more calls now.
func (t try) failed() bool {
	switch t.kind {
	case flow.KindTimeout, flow.KindError:
		return true
	case flow.KindResponse:
		return t.status >= 500
	}
	return false
}

// reason is a failed call's reason as the caller states it.
func (t try) reason() string {
	if t.kind == flow.KindResponse {
		if t.status == http.StatusOK {
			return "200 OK without a product in it"
		}
		return fmt.Sprintf("%d %s", t.status, http.StatusText(t.status))
	}
	return t.err
}

// The errors an attempt reports to the breaker.
var (
	errAttemptFailed = errors.New("attempt failed")
	errCancelled     = errors.New("cancelled") // the lab is stopping: not the callee's fault
)

// maxBackoff caps exponential backoff, so that ten attempts with a long base
// still retry within the lab's attention span.
const maxBackoff = 10 * time.Second

// backoff is the wait before the attempt after attempt n: the fixed delay, or
// full jitter, a random wait in [0, base·2^(n-1)] that spreads the retries of
// many callers apart.
func (c *settings) backoff(n int) time.Duration {
	base := millis(c.retryDelayMS)
	if c.retry == retryFixed {
		return base
	}
	ceiling := base
	for i := 1; i < n && ceiling < maxBackoff; i++ {
		ceiling *= 2
	}
	return rand.N(min(ceiling, maxBackoff) + 1)
}

// pickProduct is the id a call asks for: mostly 123, as in the article, or
// another product, plus the learner's share of ids that do not exist.
func (c *settings) pickProduct() int {
	switch {
	case rand.IntN(100) < c.unknownIDs:
		return 900 + rand.IntN(100)
	case rand.IntN(2) == 0:
		return 123
	}
	return 100 + rand.IntN(100)
}

// transportError says in a few words why no answer came.
func transportError(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

// sleep waits d, or less if ctx ends first, and reports whether it waited it all.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func millis(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// ms is a duration as the events carry it.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
