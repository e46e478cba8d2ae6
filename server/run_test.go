package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"

	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowlab/flow"
)

var labSeq atomic.Int64

// server is flowlab started by run on :0 ports, as a newcomer would start it.
type server struct {
	URL    string // http://127.0.0.1:port
	base   string // /labs/<its lab>
	cancel context.CancelFunc
	done   chan error
	stderr *lockedBuffer
}

// testTag names this test binary on the shared brokers: its pid,
// zero-padded, so that names are as long on every machine (a layout that
// fits here fits in CI too) and TestMain can tell a live binary's objects
// from a killed one's. Instance names made by tests are testTag and a letter.
var testTag = fmt.Sprintf("t%05d", os.Getpid()%100000)

// labPrefix starts the id of every lab this test binary makes.
var labPrefix = testTag + "-"

// testLab is a new lab id of this test binary's own.
func testLab() string { return fmt.Sprintf("%s%d", labPrefix, labSeq.Add(1)) }

// MustStart runs the whole server on free ports and waits for its health
// endpoint to say ok.
func MustStart(tb testing.TB, extra ...string) *server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// A lab of its own, so that its exchanges, queues, topics and groups
	// never meet another test's on the shared RabbitMQ.
	lab := testLab()
	// A progress file of its own, so that no test writes to $HOME; extra may
	// give another.
	args := append([]string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", lab,
		"-progress", filepath.Join(tb.TempDir(), "progress.db")}, extra...)
	pr, pw := io.Pipe()
	s := &server{cancel: cancel, done: make(chan error, 1), stderr: &lockedBuffer{}, base: "/labs/" + lab}
	go func() {
		err := run(ctx, args, func(string) string { return "" }, pw, s.stderr)
		pw.Close()
		s.done <- err
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := regexp.MustCompile(`open (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case s.URL = <-urls:
	case err := <-s.done:
		tb.Fatalf("flowlab did not start: %v\n%s", err, s.stderr)
	case <-time.After(20 * time.Second):
		tb.Fatalf("flowlab printed no address\n%s", s.stderr)
	}
	tb.Cleanup(func() { s.Stop(tb) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("health never ok: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop cancels run, as SIGINT does, and fails if it takes longer than a
// graceful stop may.
func (s *server) Stop(tb testing.TB) {
	tb.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			tb.Errorf("run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		tb.Fatal("flowlab took more than 5 s to stop")
	}
}

func (s *server) ws(tb testing.TB, path string, origin string) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+path, h)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServerRunsAndReportsEachPart(t *testing.T) {
	s := MustStart(t)
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status string                     `json:"status"`
		Parts  map[string]json.RawMessage `json:"parts"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	for _, part := range []string{"web", "product-service", "kafka", "rabbitmq"} {
		if _, ok := h.Parts[part]; !ok {
			t.Errorf("health has no %q part: %v", part, h.Parts)
		}
	}
	if !strings.Contains(string(h.Parts["kafka"]), `"ok":true`) {
		t.Errorf("embedded Kafka not healthy: %s", h.Parts["kafka"])
	}

	page := get(t, s.URL+s.base+"/request-response")
	for _, want := range []string{"Request-response", `data-testid="diagram"`, "/static/app.js", "Take product-service down"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, asset := range []string{"/static/app.js", "/static/style.css", "/static/vendor/uplot/uPlot.esm.js"} {
		if r, err := http.Get(s.URL + asset); err != nil || r.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", asset, err, r.Status)
		}
	}
	if r, _ := http.Get(s.URL + s.base + "/no-such-pattern"); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown scenario answered %d, want 404", r.StatusCode)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestSocketSendsSnapshotThenLiveTrafficAndRefusesBadCommands(t *testing.T) {
	s := MustStart(t)
	conn, _, err := s.ws(t, s.base+"/request-response/ws", s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var snap snapshotMsg
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&snap); err != nil || snap.Type != "snapshot" || len(snap.View.Nodes) == 0 || len(snap.Knobs) == 0 {
		t.Fatalf("first message %+v, %v; want a snapshot with topology and knobs", snap, err)
	}
	// Traffic flows at the default offered load.
	deadline := time.Now().Add(10 * time.Second)
	for sawRequest := false; !sawRequest; {
		if time.Now().After(deadline) {
			t.Fatal("no request event within 10 s")
		}
		var f frame
		conn.ReadJSON(&f)
		for _, e := range f.Events {
			sawRequest = sawRequest || e.Kind == "request"
		}
	}

	cases := []struct{ name, cmd, want string }{
		{"out of range", `{"id":1,"op":"set","knob":"latency_ms","value":99999}`, "must be from 0 to 5000"},
		{"unknown knob", `{"id":2,"op":"set","knob":"warp","value":1}`, `no knob "warp"`},
		{"wrong type", `{"id":3,"op":"set","knob":"up","value":"yes"}`, "true or false"},
		{"malformed", `{"id":4,"op":`, "malformed command"},
		{"unknown field", `{"id":5,"op":"set","knob":"rate","value":1,"lab":"x"}`, "malformed command"},
		{"unknown op", `{"id":6,"op":"explode"}`, `unknown command "explode"`},
		{"unknown preset", `{"id":7,"op":"preset","preset":"magic"}`, `no preset "magic"`},
		{"oversize", `{"id":8,"op":"set","knob":"` + strings.Repeat("k", 5000) + `"}`, "too large"},
	}
	before := knobValues(snap.Knobs)
	for _, c := range cases {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(c.cmd)); err != nil {
			t.Fatal(err)
		}
		r := readReply(t, conn)
		if r.OK || !strings.Contains(r.Error, c.want) {
			t.Errorf("%s: reply %+v, want an error containing %q", c.name, r, c.want)
		}
	}
	conn.WriteMessage(websocket.TextMessage, []byte(`{"id":9,"op":"set","knob":"latency_ms","value":250}`))
	r := readReply(t, conn)
	if !r.OK {
		t.Fatalf("valid command refused: %+v", r)
	}
	after := knobValues(r.Knobs)
	for k, v := range before {
		if k == "latency_ms" {
			if after[k] != float64(250) {
				t.Errorf("latency_ms = %v after setting 250", after[k])
			}
		} else if after[k] != v {
			t.Errorf("%s changed from %v to %v by refused commands", k, v, after[k])
		}
	}
}

type frame struct {
	Type   string `json:"type"`
	Events []struct {
		Kind string `json:"kind"`
		Msg  string `json:"msg"`
	} `json:"events"`
}

func readReply(t *testing.T, conn *websocket.Conn) reply {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var r reply
		if json.Unmarshal(msg, &r) == nil && r.Type == "reply" {
			return r
		}
	}
}

func knobValues(ks []flow.Knob) map[string]any {
	m := map[string]any{}
	for _, k := range ks {
		m[k.Name] = k.Value
	}
	return m
}

func TestForeignOriginIsRefused(t *testing.T) {
	s := MustStart(t)
	_, resp, err := s.ws(t, s.base+"/request-response/ws", "http://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, response %v; want 403", err, resp)
	}
}

func TestPortInUseNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	for _, c := range []struct{ flag, env string }{{"-addr", "FLOWLAB_ADDR"}, {"-product-addr", "PRODUCT_ADDR"}, {"-kafka-addr", "KAFKA_ADDR"}} {
		args := []string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", c.flag, taken}
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.flag) || !strings.Contains(err.Error(), c.env) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s in use: error %v; want one line naming %s and %s", c.flag, err, c.flag, c.env)
		}
	}
}

func TestStopLeavesNothingListening(t *testing.T) {
	s := MustStart(t)
	var snap snapshotMsg
	conn, _, err := s.ws(t, s.base+"/request-response/ws", s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn.ReadJSON(&snap)
	product := ""
	for _, n := range snap.View.Nodes {
		if n.ID == "product-service" {
			product = n.Note
		}
	}
	start := time.Now()
	s.Stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL, "http://"), time.Second); err == nil {
		t.Error("web port still listening after stop")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if websocket.IsCloseError(err, websocket.CloseGoingAway) {
				break
			}
			t.Fatalf("socket ended with %v, want a going-away close from the server", err)
		}
	}
	if i := strings.LastIndex(product, ":"); i >= 0 {
		if _, err := net.DialTimeout("tcp", "127.0.0.1"+product[i:], time.Second); err == nil {
			t.Errorf("product-service (%s) still listening after stop", product)
		}
	}
}
