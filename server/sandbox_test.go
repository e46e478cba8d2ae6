package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
)

// noRedirect is a client that shows a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// newSandbox posts "New sandbox" as the page's form does and returns the
// answer.
func (s *server) newSandbox(t *testing.T, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/labs", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var sandboxPath = regexp.MustCompile(`^/labs/([a-z2-7]{8})/request-response$`)

// mustSandbox makes a sandbox and returns its lab's path, /labs/<id>.
func (s *server) mustSandbox(t *testing.T) string {
	t.Helper()
	resp := s.newSandbox(t, s.URL)
	m := sandboxPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /labs: %d to %q, want 303 to /labs/<8 base32 chars>/request-response\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return "/labs/" + m[1]
}

// labsHealth is the labs part of /healthz.
type labsHealth struct {
	Open    int `json:"open"`
	Running int `json:"running_scenarios"`
}

func (s *server) labs(t *testing.T) labsHealth { return labsAt(t, s.URL) }

// labsAt reads the labs part of the /healthz of the flowlab at url.
func labsAt(tb testing.TB, url string) labsHealth {
	tb.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Parts struct {
			Labs labsHealth `json:"labs"`
		} `json:"parts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		tb.Fatal(err)
	}
	return h.Parts.Labs
}

// productAddr opens the request-response page of lab over its websocket,
// waits for order-service's calls to reach product-service, and returns
// product-service's address as the diagram shows it.
func (s *server) productAddr(t *testing.T, lab string) string {
	t.Helper()
	ws := dialLab(t, "ws"+strings.TrimPrefix(s.URL, "http")+lab+"/request-response/ws")
	defer ws.Close()
	var addr string
	ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	var snap struct {
		View flow.View `json:"view"`
	}
	if err := ws.ReadJSON(&snap); err != nil {
		t.Fatal(err)
	}
	for _, n := range snap.View.Nodes {
		if n.ID == "product-service" {
			addr = n.Note
		}
	}
	ws.until(t, "product-service answering order-service", func(m labMsg) bool {
		if m.Type != "frame" || m.Stats == nil {
			return false
		}
		for _, c := range m.Stats.Counters {
			if c.Name == "product-service.received" && c.Value > 0 {
				return true
			}
		}
		return false
	})
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("product-service's note %q is not an address", addr)
	}
	return addr
}

// "New sandbox" makes a lab of its own: an unguessable id, its own
// product-service on a port of its own, started only when its page opens.
func TestNewSandboxIsALabOfItsOwn(t *testing.T) {
	s := MustStart(t)
	before := s.labs(t)
	if before.Open != 1 || before.Running != 5 {
		t.Fatalf("at start: %+v, want the default lab's 5 scenarios running", before)
	}
	if resp := s.newSandbox(t, "http://elsewhere.example"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST /labs from another site: %d, want 400", resp.StatusCode)
	}
	one, two := s.mustSandbox(t), s.mustSandbox(t)
	if one == two {
		t.Fatalf("two sandboxes share the id %s", one)
	}
	if got := s.labs(t); got.Open != 3 || got.Running != 5 {
		t.Fatalf("after two sandboxes, none opened: %+v, want 3 labs and still 5 scenarios running", got)
	}
	resp, err := http.Get(s.URL + one + "/request-response")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the sandbox's page: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := s.labs(t); got.Running != 6 {
		t.Fatalf("after opening its page: %d scenarios running, want 6", got.Running)
	}
	mine, defaults, theirs := s.productAddr(t, one), s.productAddr(t, s.base), s.productAddr(t, two)
	_, p1, _ := net.SplitHostPort(mine)
	_, p0, _ := net.SplitHostPort(defaults)
	_, p2, _ := net.SplitHostPort(theirs)
	if p1 == p0 || p1 == p2 || p2 == p0 || p1 == "5000" || p2 == "5000" {
		t.Fatalf("product-service ports: default %s, sandboxes %s and %s: want three different ports, none 5000", p0, p1, p2)
	}
}

// Past -max-labs, "New sandbox" answers 503 with a page that says why.
func TestSandboxCapAnswersAClearPage(t *testing.T) {
	s := MustStart(t, "-max-labs", "2")
	s.mustSandbox(t)
	resp := s.newSandbox(t, s.URL)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "already runs 2 labs, its limit") {
		t.Fatalf("POST /labs past the cap: %d\n%s", resp.StatusCode, body)
	}
	if got := s.labs(t); got.Open != 2 {
		t.Fatalf("%d labs open, want 2", got.Open)
	}
}

// A scenario nobody watches stops its load; opening its page again starts
// it, with product-service on the same port.
func TestIdleScenarioStopsAndStartsAgain(t *testing.T) {
	s := MustStart(t, "-idle-stop", "1s")
	lab := s.mustSandbox(t)
	addr := s.productAddr(t, lab)
	waitFor(t, "every scenario stopped", func() bool { return s.labs(t).Running == 0 })
	if again := s.productAddr(t, lab); again != addr {
		t.Fatalf("product-service moved from %s to %s", addr, again)
	}
	if got := s.labs(t); got.Running != 1 || got.Open != 2 {
		t.Fatalf("after opening it again: %+v, want 1 scenario running in 2 labs", got)
	}
}

// A sandbox nobody opens is torn down: its product-service closed, its
// pages saying so; the default lab stays.
func TestUnusedSandboxIsTornDown(t *testing.T) {
	s := MustStart(t, "-sandbox-ttl", "1s")
	lab := s.mustSandbox(t)
	addr := s.productAddr(t, lab)
	unused := s.mustSandbox(t) // never opened: its product-service is bound, not running
	// Polling its page would open it: the health's count is watched instead.
	waitFor(t, "both sandboxes torn down", func() bool { return s.labs(t).Open == 1 })
	resp, err := http.Get(s.URL + lab + "/request-response")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "torn down after 1s unused: make a new one") {
		t.Fatalf("the torn-down sandbox's page: %d\n%s", resp.StatusCode, body)
	}
	if got := s.labs(t); got.Running != 5 {
		t.Fatalf("%d scenarios running, want the default lab's 5", got.Running)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("product-service of the torn-down sandbox still answers on %s", addr)
	}
	if resp, err := http.Get(s.URL + unused + "/event-driven"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the unused sandbox's page: %v %v, want 404", resp, err)
	}
}

// Pages, sockets and health are served while sandboxes are made (run with
// -race: the registry is shared by every handler).
func TestSandboxesAreMadeWhilePagesAreServed(t *testing.T) {
	s := MustStart(t, "-max-labs", "6")
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/labs", nil)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Errorf("POST /labs: %d", resp.StatusCode)
			}
		})
		wg.Go(func() {
			for _, path := range []string{s.base + "/request-response", "/healthz", s.base + "/work-queue"} {
				resp, err := http.Get(s.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if got := s.labs(t); got.Open != 6 {
		t.Fatalf("%d labs open, want 6", got.Open)
	}
}

// "New sandbox" on a page opens the new lab's first page, live, with its
// own product-service address in the diagram.
func TestBrowserNewSandbox(t *testing.T) {
	s := MustStart(t)
	defaults := s.productAddr(t, s.base)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/work-queue")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the default lab live", `document.querySelector('#conn.ok') !== null`)
	press(t, ctx, `[data-testid="new-sandbox"]`)
	waitJS(t, ctx, "the sandbox's page", `/^\/labs\/[a-z2-7]{8}\/request-response$/.test(location.pathname)`)
	waitJS(t, ctx, "the sandbox live with traffic", `document.querySelector('#conn.ok') !== null &&
		Number((document.querySelector('dd[data-counter="calls"]')||{}).textContent) > 0`)
	waitJS(t, ctx, "the sandbox named", `document.querySelector('[data-testid="sandbox"]').textContent === 'sandbox ' + location.pathname.split('/')[2]`)
	var note string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('#diagram [data-node="product-service"]').textContent`, &note)); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`127\.0\.0\.1:\d+`).MatchString(note) || strings.Contains(note, ":5000") || strings.Contains(note, defaults) {
		t.Fatalf("product-service in the sandbox's diagram says %q (the default lab's is %s)", note, defaults)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(os.TempDir(), "flowlab-new-sandbox.png"), png, 0o644)
}

// A sandbox torn down for being unused deletes what its scenarios made on the
// brokers: here work-queue's queues on the real RabbitMQ.
func TestTornDownSandboxLeavesNothingOnTheBroker(t *testing.T) {
	s := MustStart(t, "-sandbox-ttl", "3s")
	lab := s.mustSandbox(t)
	queue := "emails." + strings.TrimPrefix(lab, "/labs/")
	resp, err := http.Get(s.URL + lab + "/work-queue") // opens it: its scenario declares its queues
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the sandbox's queue "+queue+" declared", func() bool { return queueExists(t, queue) })
	waitFor(t, "the sandbox torn down", func() bool { return s.labs(t).Open == 1 })
	if queueExists(t, queue) {
		t.Fatalf("queue %s is still on the broker after its sandbox was torn down", queue)
	}
}

// queueExists asks the real RabbitMQ with a passive declare, on a channel of
// its own: a missing queue closes the channel.
func queueExists(t *testing.T, name string) bool {
	t.Helper()
	url := os.Getenv("AMQP_URL")
	if url == "" {
		url = defaultAMQPURL()
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("RabbitMQ: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
	return err == nil
}

// Stopping flowlab tears its sandboxes down, since nobody can open them
// again: their queues go from the broker. The default lab's stay.
func TestStoppingFlowlabTearsDownItsSandboxes(t *testing.T) {
	s := MustStart(t)
	lab := s.mustSandbox(t)
	queue := "emails." + strings.TrimPrefix(lab, "/labs/")
	kept := "emails." + strings.TrimPrefix(s.base, "/labs/")
	for _, page := range []string{lab, s.base} {
		resp, err := http.Get(s.URL + page + "/work-queue") // opens it: its scenario declares its queues
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, "both labs' queues declared", func() bool { return queueExists(t, queue) && queueExists(t, kept) })
	s.Stop(t)
	if queueExists(t, queue) {
		t.Errorf("queue %s is still on the broker after flowlab stopped: nobody can open its sandbox again", queue)
	}
	if !queueExists(t, kept) {
		t.Errorf("the default lab's queue %s went with the stop", kept)
	}
	if !strings.Contains(s.stderr.String(), `msg="sandbox torn down" lab=`+strings.TrimPrefix(lab, "/labs/")+` why="flowlab stopped"`) {
		t.Errorf("the log does not say the sandbox was torn down:\n%s", s.stderr)
	}
}
