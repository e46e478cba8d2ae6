package reqresp_test

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"flowlab/flow"
	"flowlab/scenarios/reqresp"
)

func TestProductServiceAnswersJSON(t *testing.T) {
	l := mustRun(t, nil)
	base := "http://" + l.ProductAddr()

	status, body := get(t, base+"/products/123")
	if status != 200 || body["id"] != 123.0 || body["name"] == "" || body["price"] == nil {
		t.Errorf("GET /products/123 = %d %v, want 200 and product 123 with a name and a price", status, body)
	}
	for _, path := range []string{"/products/999", "/products/abc", "/basket"} {
		status, body := get(t, base+path)
		if msg, _ := body["error"].(string); status != 404 || msg == "" {
			t.Errorf("GET %s = %d %v, want 404 with an error message", path, status, body)
		}
	}

	mustSet(t, l, "error_rate", 100)
	status, body = get(t, base+"/products/123")
	if msg, _ := body["error"].(string); status != 503 || msg == "" {
		t.Errorf("GET /products/123 at 100%% errors = %d %v, want 503 with an error message", status, body)
	}
}

func TestOutsideClientGetsItsOwnMessageID(t *testing.T) {
	l := mustRun(t, nil)
	get(t, "http://"+l.ProductAddr()+"/products/123")

	hops := l.events.of("ext-1")
	if len(hops) != 2 {
		t.Fatalf("ext-1 has hops %v, want a request and a response", l.events.steps("ext-1"))
	}
	req, resp := hops[0], hops[1]
	if req.Kind != flow.KindRequest || req.From != "outside-client" || req.To != "product-service" ||
		!req.Detail.External || req.Detail.Payload != "GET /products/123" {
		t.Errorf("outside request event = %+v", req)
	}
	if resp.Kind != flow.KindResponse || resp.From != "product-service" || resp.To != "outside-client" ||
		!resp.Detail.External || resp.Detail.Status != 200 {
		t.Errorf("outside response event = %+v", resp)
	}
	l.wantCounters(t, map[string]int64{"outside-requests": 1, "product-service.received": 1, "calls": 0})
	if st := l.Stats().Nodes["outside-client"].State; st != "active" {
		t.Errorf("outside-client state = %q, want active", st)
	}
}

func TestOpenReportsPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	fl, _ := flow.NewLab("test")
	_, err = reqresp.Open(reqresp.Config{ProductAddr: taken.Addr().String(), Emit: flow.NewEmitter(fl, "request-response", &recorder{})})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Open on a taken port: %v, want an error wrapping EADDRINUSE", err)
	}
}

func TestDownRefusesConnectionsAndUpServesAgain(t *testing.T) {
	l := mustRun(t, map[string]any{"errors": "raise"})
	addr := l.ProductAddr()

	mustSet(t, l, "up", false)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s while down: %v, want connection refused", addr, err)
	}
	res := l.call(t)
	if res.Outcome != "failed" || res.Reason != "connection refused" {
		t.Errorf("call while down = %+v, want failed: connection refused", res)
	}
	hops := l.events.of(res.MsgID)
	if len(hops) != 3 || hops[1].Kind != flow.KindError || hops[1].Detail.Error != "connection refused" ||
		hops[1].From != "order-service" || hops[1].To != "product-service" {
		t.Errorf("hops of %s = %+v, want request, error (connection refused), result", res.MsgID, hops)
	}
	l.wantCounters(t, map[string]int64{"refused": 1, "failed": 1, "product-service.received": 0})
	if st := l.Stats().Nodes["product-service"].State; st != "down" {
		t.Errorf("product-service state = %q, want down", st)
	}

	mustSet(t, l, "up", true)
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("dial %s once up again: %v", addr, err)
	} else {
		c.Close()
	}
	if res := l.call(t); res.Outcome != "ok" || res.Product == nil {
		t.Errorf("call once up again = %+v, want ok with a product", res)
	}
	if got := strings.Join(l.events.states("product-service"), ","); got != "down,up" {
		t.Errorf("product-service states %s, want down,up", got)
	}
}

func TestDownDropsCallsInProgress(t *testing.T) {
	l := mustRun(t, map[string]any{"latency_ms": 5000, "errors": "raise"}) // and no timeout
	results := make(chan reqresp.Result, 1)
	go func() { results <- l.call(t) }()
	waitFor(t, "product-service to receive the call", func() bool { return l.counters()["product-service.received"] == 1 })

	mustSet(t, l, "up", false)
	res := <-results
	if res.Outcome != "failed" {
		t.Errorf("call dropped by going down = %+v, want failed", res)
	}
	hops := l.events.of(res.MsgID)
	if len(hops) != 3 || hops[1].Kind != flow.KindError || hops[1].Detail.Error == "" {
		t.Errorf("hops of %s = %+v, want request, error, result", res.MsgID, hops)
	}
}
