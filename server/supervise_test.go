package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"flowlab/flow"
)

// faulty is a scenario that panics or fails where told to, and otherwise
// runs until ctx ends.
type faulty struct {
	board
	panics      bool // in Run
	setPanics   bool
	statsPanics bool
	err         error
	ran         atomic.Bool // Run has started
}

func (f *faulty) Name() string  { return "faulty" }
func (f *faulty) Title() string { return "Faulty" }
func (f *faulty) View() flow.View {
	return flow.View{Nodes: []flow.Node{{ID: "svc", Label: "sample-service", Kind: "service", X: 500, Y: 280}}, Edges: []flow.Edge{}}
}
func (f *faulty) Stats() flow.Stats {
	if f.statsPanics && f.ran.Load() {
		panic("boom in Stats")
	}
	return flow.Stats{Nodes: map[string]flow.NodeState{"svc": {State: "up"}}}
}
func (f *faulty) Set(knob string, v any) error {
	if f.setPanics {
		panic("boom in Set")
	}
	return f.board.Set(knob, v)
}
func (f *faulty) Run(ctx context.Context) error {
	f.ran.Store(true)
	if f.panics {
		panic("boom in a sample service")
	}
	if f.err != nil {
		return f.err
	}
	<-ctx.Done()
	return nil
}

// A panic in Run, in a knob's Set or in Stats stops only that scenario, is
// logged and shown, and a restart brings a fresh one.
func TestPanickingScenarioIsRecordedAndRestarts(t *testing.T) {
	var logs lockedBuffer
	a := &App{log: slog.New(slog.NewTextHandler(&logs, nil))}
	lab, err := flow.NewLab(testLab())
	if err != nil {
		t.Fatal(err)
	}
	l := &labRun{lab: lab}
	// Opened again after each failure: each time it fails another way, the
	// last time not at all.
	opened := []*faulty{{panics: true}, {setPanics: true}, {statsPanics: true}, {}}
	var opens atomic.Int32
	if err := l.add("faulty", "", a, func(*flow.Emitter) (flow.Scenario, error) {
		return opened[opens.Add(1)-1], nil
	}); err != nil {
		t.Fatal(err)
	}
	s := l.scenarios[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for i, panicked := range []string{"boom in a sample service", "boom in Set", "boom in Stats"} {
		if opened[i].setPanics {
			waitFor(t, "the scenario running", func() bool { return opened[i].ran.Load() })
			if err := s.Set("rate", 1); flow.KindOf(err) != flow.Internal {
				t.Errorf("a knob whose Set panics: %v, want an internal error", err)
			}
		}
		waitFor(t, panicked+" recorded as the scenario's failure", func() bool { return s.sup.Failed() != "" })
		if f := s.sup.Failed(); !strings.Contains(f, "Faulty stopped") || strings.Contains(f, "boom") {
			t.Errorf("page says %q: want that Faulty stopped, without the internal detail", f)
		}
		if !strings.Contains(logs.String(), panicked) {
			t.Errorf("log has no detail of %q:\n%s", panicked, logs.String())
		}
		if err := s.Set("rate", 1); flow.KindOf(err) != flow.Invalid {
			t.Errorf("a knob set on a stopped scenario: %v, want Invalid", err)
		}
		if err := s.sup.Restart(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the scenario running again", func() bool { return s.sup.Failed() == "" && int(opens.Load()) == i+2 })
	}
	if err := s.Set("rate", 1); err != nil {
		t.Errorf("a knob set on the restarted scenario: %v", err)
	}
	if err := s.sup.Restart(); flow.KindOf(err) != flow.Invalid {
		t.Errorf("restart of a running scenario: %v, want Invalid", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if s.sup.Failed() != "" {
		t.Errorf("stopping with the server recorded as a failure: %q", s.sup.Failed())
	}
}

func TestFailedScenarioStaysInItsPageAndRestartsFromIt(t *testing.T) {
	var opens atomic.Int32
	refused := flow.Errorf(flow.Unavailable, "the broker refused a declare")
	a, base := startWithFaulty(t, func(*flow.Emitter) (flow.Scenario, error) {
		if opens.Add(1) == 1 {
			return &faulty{err: refused}, nil
		}
		return &faulty{}, nil
	})
	wsBase := "ws" + strings.TrimPrefix(base, "http")

	faultyWS := dialLab(t, wsBase+"/faulty/ws")
	msg := faultyWS.until(t, "the failure on the faulty page", func(m labMsg) bool { return m.failed() != "" })
	if want := "Faulty stopped: the broker refused a declare. Restart it to try again."; msg.failed() != want {
		t.Errorf("page says %q, want %q", msg.failed(), want)
	}

	// The rest of the lab and the server keep running.
	waitFor(t, "healthz ok", func() bool {
		resp, err := http.Get("http://" + a.web.Addr().String() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	rr := dialLab(t, wsBase+"/request-response/ws")
	rr.until(t, "request-response hops", func(m labMsg) bool { return m.Type == "frame" && len(m.Events) > 0 })

	// A restart from another site is refused; from the page it is taken.
	req, _ := http.NewRequest(http.MethodPost, base+"/faulty/restart", nil)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign restart: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/faulty/restart", nil)
	req.Header.Set("Origin", "http://"+a.web.Addr().String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("restart: %v %v", resp, err)
	}
	faultyWS.until(t, "the scenario back, with its knobs", func(m labMsg) bool {
		return m.Type == "frame" && m.Stats != nil && m.Stats.Failed != nil && *m.Stats.Failed == "" && m.Stats.Knobs != nil
	})
	if opens.Load() != 2 {
		t.Errorf("opened %d times, want 2", opens.Load())
	}
	resp, err = http.Post(base+"/faulty/restart", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.String(), "is running") {
		t.Errorf("restart of a running scenario: %d %s", resp.StatusCode, body.String())
	}
}

// failsAtStart is a scenario that fails as it starts, as one refused by its
// broker would, after releasing what its Open took.
type failsAtStart struct {
	flow.Scenario
	err error
}

func (f failsAtStart) Run(ctx context.Context) error {
	ended, cancel := context.WithCancel(ctx)
	cancel()
	f.Scenario.Run(ended)
	return f.err
}

// A restart opens the real scenario again, with its real opener, into the
// page its browsers watch, and its services run.
func TestRestartBringsBackTheRealScenario(t *testing.T) {
	a, base := startServer(t, func(a *App, lab string) {
		s, _ := a.labs[lab].scenario("event-driven")
		s.sup.cur = failsAtStart{s.sup.cur, flow.Errorf(flow.Unavailable, "the broker refused a declare")}
	})
	ws := dialLab(t, "ws"+strings.TrimPrefix(base, "http")+"/event-driven/ws")
	ws.until(t, "the failure", func(m labMsg) bool { return strings.Contains(m.failed(), "refused a declare") })
	req, _ := http.NewRequest(http.MethodPost, base+"/event-driven/restart", nil)
	req.Header.Set("Origin", "http://"+a.web.Addr().String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("restart: %v %v", resp, err)
	}
	ws.until(t, "order-service publishing and inventory acking after the restart", func(m labMsg) bool {
		if m.Type != "frame" || m.Stats == nil || m.failed() != "" {
			return false
		}
		n := map[string]int64{}
		for _, c := range m.Stats.Counters {
			n[c.Name] = c.Value
		}
		return m.Stats.Nodes["order-service"].State == "up" && n["published"] > 0 && n["inventory.acked"] > 0
	})
}

// startWithFaulty runs the whole server, its lab with a fifth scenario
// "faulty" opened by opener, and returns the lab's URL.
func startWithFaulty(t *testing.T, opener func(*flow.Emitter) (flow.Scenario, error)) (*App, string) {
	t.Helper()
	return startServer(t, func(a *App, lab string) {
		if err := a.labs[lab].add("faulty", "", a, opener); err != nil {
			t.Fatal(err)
		}
	})
}

// startServer runs the whole server on free ports with a lab of its own,
// changed by patch before it runs, and returns the lab's URL.
func startServer(t *testing.T, patch func(a *App, lab string)) (*App, string) {
	t.Helper()
	lab := testLab()
	stderr := &lockedBuffer{}
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", lab, "-progress", filepath.Join(t.TempDir(), "progress.db")},
		func(string) string { return "" }, stderr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := open(cfg, io.Discard, stderr)
	if err != nil {
		t.Fatal(err)
	}
	patch(a, lab)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v\n%s", err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			t.Error("flowlab took more than 5 s to stop")
		}
	})
	return a, "http://" + a.web.Addr().String() + "/labs/" + lab
}

// labMsg is a snapshot or a frame, as much as these tests read.
type labMsg struct {
	Type   string       `json:"type"`
	Failed *string      `json:"failed"`
	Events []flow.Event `json:"events"`
	Recent []flow.Event `json:"recent"`
	Stats  *struct {
		Failed   *string                   `json:"failed"`
		Knobs    []json.RawMessage         `json:"knobs"`
		Nodes    map[string]flow.NodeState `json:"nodes"`
		Counters []flow.Counter            `json:"counters"`
	} `json:"stats"`
}

func (m labMsg) failed() string {
	switch {
	case m.Failed != nil:
		return *m.Failed
	case m.Stats != nil && m.Stats.Failed != nil:
		return *m.Stats.Failed
	}
	return ""
}

type labConn struct{ *websocket.Conn }

func dialLab(t *testing.T, url string) labConn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return labConn{c}
}

// until reads messages until one satisfies ok, for at most 15 s.
func (c labConn) until(t *testing.T, what string, ok func(labMsg) bool) labMsg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var m labMsg
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok(m) {
			return m
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failed scenario's page says so and restarts it from its own control.
func TestBrowserShowsAFailedScenarioAndRestartsIt(t *testing.T) {
	var opens atomic.Int32
	_, base := startWithFaulty(t, func(*flow.Emitter) (flow.Scenario, error) {
		if opens.Add(1) == 1 {
			return &faulty{err: flow.Errorf(flow.Unavailable, "the broker refused to declare queue orders: it exists with other arguments")}, nil
		}
		return &faulty{}, nil
	})
	ctx := browser(t)
	failOnPageErrors(t, ctx)
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/faulty")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the failure shown", `!document.getElementById('failed').hidden &&
		document.getElementById('failed-text').textContent.includes('Faulty stopped: the broker refused')`)
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(os.TempDir(), "flowlab-failed-scenario.png"), png, 0o644)
	press(t, ctx, `[data-testid="restart"]`)
	waitJS(t, ctx, "the failure gone after the restart", `document.getElementById('failed').hidden`)
	if opens.Load() != 2 {
		t.Errorf("opened %d times, want 2", opens.Load())
	}
}
