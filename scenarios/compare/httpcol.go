package compare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/pathcut"
)

// httpWorkers bounds the orders order-service serves at once, as a threaded
// server's pool does: past it an order is refused at once.
const httpWorkers = 500

// httpColumn is the article's request-response: order-service calls
// inventory-service and then email-service over HTTP, and answers its caller
// only when both have answered. Inventory sits behind a cuttable path, so
// "down" is a real refused connection.
type httpColumn struct {
	books *books
	inv   *inventoryState
	emit  *flow.Emitter

	invSrv, emailSrv *http.Server
	invLn, emailLn   net.Listener
	invPath          *pathcut.Path
	invURL, emailURL string
	client           *http.Client

	timeoutMS atomic.Int64 // per attempt; 0 waits for ever, as requests.post without timeout=
	retries   atomic.Int64 // attempts after the first
	inFlight  atomic.Int64 // orders being served
	wg        sync.WaitGroup
}

func openHTTP(b *books, inv *inventoryState, emit *flow.Emitter) (*httpColumn, error) {
	c := &httpColumn{books: b, inv: inv, emit: emit,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var err error
	if c.invLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if c.emailLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		c.invLn.Close()
		return nil, err
	}
	if c.invPath, err = pathcut.New("compare-inventory", c.invLn.Addr().String()); err != nil {
		c.invLn.Close()
		c.emailLn.Close()
		return nil, err
	}
	c.invURL = "http://" + c.invPath.Addr() + "/reserve?order="
	c.emailURL = "http://" + c.emailLn.Addr().String() + "/send?order="
	return c, nil
}

// release frees the ports of a column that will never serve.
func (c *httpColumn) release() {
	c.invPath.Close()
	c.invLn.Close()
	c.emailLn.Close()
}

// serve runs inventory-service and email-service until ctx ends.
func (c *httpColumn) serve(ctx context.Context) {
	order := func(r *http.Request) (int64, bool) {
		n, err := strconv.ParseInt(r.URL.Query().Get("order"), 10, 64)
		return n, err == nil && r.Method == http.MethodPost
	}
	// Inventory does not watch its caller: a reservation that outlives the
	// caller's timeout is still made, as a real service's would be.
	c.invSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok := order(r)
		if !ok {
			http.Error(w, "POST /reserve?order=<n>", http.StatusBadRequest)
			return
		}
		reserveStock(ctx, c.inv, c.books, n)
		w.WriteHeader(http.StatusNoContent)
	})}
	c.emailSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, ok := order(r)
		if !ok {
			http.Error(w, "POST /send?order=<n>", http.StatusBadRequest)
			return
		}
		sendConfirmation(c.books, n)
		w.WriteHeader(http.StatusNoContent)
	})}
	go c.invSrv.Serve(c.invLn)
	go c.emailSrv.Serve(c.emailLn)
	<-ctx.Done()
	c.invPath.Close()
	c.invSrv.Close()
	c.emailSrv.Close()
	c.wg.Wait()
	c.client.CloseIdleConnections()
}

// setInventory takes inventory-service's port down or brings it back.
func (c *httpColumn) setInventory(up bool) error {
	if up {
		return c.invPath.Restore()
	}
	c.invPath.Cut()
	return nil
}

// place serves one order: reserve, then confirm; the caller is told yes
// only when both answered.
func (c *httpColumn) place(ctx context.Context) {
	n := c.books.place()
	if c.inFlight.Add(1) > httpWorkers {
		c.inFlight.Add(-1)
		c.books.answered(n, false, 0)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.inFlight.Add(-1)
		start := time.Now()
		id := orderID("http", n)
		err := c.call(ctx, c.invURL, n, id, "http-inventory")
		if err == nil {
			err = c.call(ctx, c.emailURL, n, id, "http-email")
		}
		c.books.answered(n, err == nil, time.Since(start))
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		c.emit.Emit(flow.Event{Kind: flow.KindResult, From: "http", To: "http", MsgID: id,
			Detail: flow.Detail{Outcome: outcome, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}})
	}()
}

// call posts order n to url, trying again after a failure as many times as
// the retries knob says.
func (c *httpColumn) call(ctx context.Context, url string, n int64, id, to string) error {
	var err error
	for attempt := 1; attempt <= 1+int(c.retries.Load()); attempt++ {
		if attempt > 1 {
			c.emit.Emit(flow.Event{Kind: flow.KindRetry, From: "http", To: to, MsgID: id, Attempt: attempt})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.emit.Emit(flow.Event{Kind: flow.KindRequest, From: "http", To: to, MsgID: id, Attempt: attempt})
		if err = c.attempt(ctx, url, n); err == nil {
			c.emit.Emit(flow.Event{Kind: flow.KindResponse, From: to, To: "http", MsgID: id, Attempt: attempt, Detail: flow.Detail{Status: http.StatusNoContent}})
			return nil
		}
		kind := flow.KindError
		if errors.Is(err, context.DeadlineExceeded) {
			kind = flow.KindTimeout
		}
		c.emit.Emit(flow.Event{Kind: kind, From: to, To: "http", MsgID: id, Attempt: attempt, Detail: flow.Detail{Error: err.Error()}})
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (c *httpColumn) attempt(ctx context.Context, url string, n int64) error {
	if ms := c.timeoutMS.Load(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+strconv.FormatInt(n, 10), nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
