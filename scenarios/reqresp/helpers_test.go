package reqresp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/scenarios/reqresp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is a running scenario with every event it emitted.
type lab struct {
	*reqresp.Scenario
	events *recorder
	stop   func() error // cancels Run and waits for it; safe to call twice
}

// mustRun opens the scenario on a free loopback port with no load, sets knobs
// in declaration order, runs it, and stops it when the test ends.
func mustRun(tb testing.TB, knobs map[string]any) *lab {
	tb.Helper()
	rec := &recorder{}
	fl, err := flow.NewLab("test")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := reqresp.Open(reqresp.Config{ProductAddr: "127.0.0.1:0", Emit: flow.NewEmitter(fl, "request-response", rec)})
	if err != nil {
		tb.Fatal(err)
	}
	l := &lab{Scenario: s, events: rec}
	mustSet(tb, l, "rate", 0) // exact counts need calls made by the test alone
	for _, k := range s.Knobs() {
		if v, ok := knobs[k.Name]; ok {
			mustSet(tb, l, k.Name, v)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	l.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("Run did not return 20 s after its context ended")
		}
	})
	tb.Cleanup(func() {
		if err := l.stop(); err != nil {
			tb.Error(err)
		}
	})
	return l
}

func mustSet(tb testing.TB, s flow.Scenario, knob string, v any) {
	tb.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if err := flow.SetKnob(s, knob, raw); err != nil {
		tb.Fatalf("set %s to %v: %v", knob, v, err)
	}
}

// call makes one order-service call; a call that never ends fails the test
// instead of hanging it.
func (l *lab) call(tb testing.TB) reqresp.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.Call(ctx)
}

// counters are the scenario's counters by name.
func (l *lab) counters() map[string]int64 {
	m := map[string]int64{}
	for _, c := range l.Stats().Counters {
		m[c.Name] = c.Value
	}
	return m
}

// wantCounters checks the named counters and ignores the rest.
func (l *lab) wantCounters(tb testing.TB, want map[string]int64) {
	tb.Helper()
	got := l.counters()
	for name, w := range want {
		if got[name] != w {
			tb.Errorf("counter %s = %d, want %d", name, got[name], w)
		}
	}
}

// waitFor polls cond until it holds; the deadline is generous because a
// slow, shared machine must not fail a correct scenario.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []flow.Event
}

func (r *recorder) Emit(e flow.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []flow.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// of is the hops of one message, in order.
func (r *recorder) of(msg string) []flow.Event {
	var hops []flow.Event
	for _, e := range r.all() {
		if e.MsgID == msg {
			hops = append(hops, e)
		}
	}
	return hops
}

// steps is the hops of one message as "kind#attempt", easy to compare.
func (r *recorder) steps(msg string) []string {
	var s []string
	for _, e := range r.of(msg) {
		s = append(s, fmt.Sprintf("%s#%d", e.Kind, e.Attempt))
	}
	return s
}

// states is the sequence of state words emitted for node.
func (r *recorder) states(node string) []string {
	var s []string
	for _, e := range r.all() {
		if e.Kind == flow.KindState && e.Detail.Node == node {
			s = append(s, e.Detail.State)
		}
	}
	return s
}

// get is an outside client's plain GET; no keep-alive, so it leaves no
// goroutine behind.
func get(tb testing.TB, url string) (int, map[string]any) {
	tb.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("GET %s: Content-Type %q, want application/json", url, ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		tb.Fatalf("GET %s: body %q is not a JSON object: %v", url, raw, err)
	}
	return resp.StatusCode, body
}
