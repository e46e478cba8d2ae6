package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"flowlab/flow"
	"flowlab/server/hub"
)

// A message of the protocol, as far as the envelope goes.
type protoMsg struct {
	V     *int            `json:"v"`
	Seq   *uint64         `json:"seq"`
	Time  int64           `json:"time"`
	Type  string          `json:"type"`
	ID    int             `json:"id"`
	OK    bool            `json:"ok"`
	Kind  string          `json:"kind"`
	By    string          `json:"by"`
	Knobs []flow.Knob     `json:"knobs"`
	Stats json.RawMessage `json:"stats"`
}

// nulls lists where v holds a JSON null. A knob's "value" may be null (an
// action has none); nothing else may.
func nulls(v any, path string) []string {
	switch v := v.(type) {
	case nil:
		if strings.HasSuffix(path, ".value") {
			return nil
		}
		return []string{path}
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(out, nulls(e, path+"."+k)...)
		}
		return out
	case []any:
		var out []string
		for i, e := range v {
			out = append(out, nulls(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	return nil
}

// Every message of every scenario of a running lab, through a command, a
// refused command and the announcement, follows docs/PROTOCOL.md: the
// version, the time, one seq stream from the snapshot's on, no null list.
func TestEveryMessageFollowsTheProtocol(t *testing.T) {
	a, base := startServer(t, func(*App, string) {})
	lab := strings.TrimPrefix(base[strings.LastIndex(base, "/"):], "/")
	for _, s := range a.labs[lab].scenarios {
		t.Run(s.Name(), func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/"+s.Name()+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var next uint64
			seen := map[string]int{}
			read := func() protoMsg {
				t.Helper()
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, raw, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("read: %v (seen %v)", err, seen)
				}
				var m protoMsg
				var tree any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatalf("%s: %v", raw, err)
				}
				json.Unmarshal(raw, &tree)
				if n := nulls(tree, m.Type); len(n) > 0 {
					t.Errorf("%.300s: null at %v", raw, n)
				}
				if m.V == nil || *m.V != hub.Version {
					t.Fatalf("%.300s: want \"v\":%d", raw, hub.Version)
				}
				if at := time.UnixMilli(m.Time); time.Since(at).Abs() > time.Minute {
					t.Fatalf("%.300s: time %v is not now", raw, at)
				}
				switch {
				case m.Type == "reply":
					if m.Seq != nil {
						t.Fatalf("%.300s: a reply is outside the stream, it has no seq", raw)
					}
				case m.Seq == nil:
					t.Fatalf("%.300s: no seq", raw)
				case m.Type == "snapshot":
					next = *m.Seq + 1
				case *m.Seq != next:
					t.Fatalf("%.300s: seq %d, want %d", raw, *m.Seq, next)
				default:
					next++
				}
				seen[m.Type]++
				return m
			}
			snap := read()
			if snap.Type != "snapshot" {
				t.Fatalf("first message is %q, want snapshot", snap.Type)
			}
			i := slices.IndexFunc(snap.Knobs, func(k flow.Knob) bool { return k.Type == flow.IntKnob || k.Type == flow.BoolKnob })
			if i < 0 {
				t.Fatalf("no int or bool knob in %+v", snap.Knobs)
			}
			k := snap.Knobs[i]
			var value any = !(k.Value == true)
			if k.Type == flow.IntKnob {
				value = k.Min
				if v, _ := k.Value.(float64); int(v) == k.Min {
					value = k.Max
				}
			}
			conn.WriteJSON(map[string]any{"id": 1, "op": "set", "knob": k.Name, "value": value})
			conn.WriteJSON(map[string]any{"id": 2, "op": "frobnicate"})
			var announced bool
			replies := map[int]protoMsg{}
			for len(replies) < 2 || !announced || seen["frame"] < 2 {
				m := read()
				switch m.Type {
				case "reply":
					replies[m.ID] = m
				case "knobs":
					announced = m.By == byBrowser && len(m.Knobs) == 1 && m.Knobs[0].Name == k.Name
				}
			}
			if !replies[1].OK || replies[2].OK || replies[2].Kind != string(flow.Invalid) {
				t.Fatalf("replies %+v: want the set carried out and the unknown op refused as invalid", replies)
			}
		})
	}
}

// Built from nothing, no message has a null list.
func TestEmptyMessagesHaveNoNullLists(t *testing.T) {
	for _, m := range []any{snapshotMsg{}, frameStatsMsg{}, reply{}, knobsMsg{}} {
		b, err := json.Marshal(hub.NoNulls(m))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("null")) {
			t.Errorf("%T: %s", m, b)
		}
	}
}

// docs/PROTOCOL.md names every message type, command op and error kind the
// code has, and no other, so the document cannot drift from the code.
func TestProtocolDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]bool{}
	sources := []string{"../flow/error.go"}
	for _, dir := range []string{".", "hub"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		sources = append(sources, files...)
	}
	names := regexp.MustCompile(`(?:Type:\s*|"type":\s*|c\.Op == |ErrorKind = )"([a-z-]+)"`)
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range names.FindAllSubmatch(b, -1) {
			code[string(m[1])] = true
		}
	}
	// The document names each in a heading or a table row: ### `name` or | `name` |.
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^(?:#+ |\\| )`([a-z-]+)`").FindAllSubmatch(doc, -1) {
		documented[string(m[1])] = true
	}
	for _, want := range []string{"snapshot", "frame", "knobs", "reply", "set", "preset", "invalid", "not-found"} {
		if !code[want] {
			t.Fatalf("found %v in the code: the pattern misses %q", code, want)
		}
	}
	for name := range code {
		if !documented[name] {
			t.Errorf("%q is in the code but not in docs/PROTOCOL.md", name)
		}
	}
	for name := range documented {
		if !code[name] {
			t.Errorf("docs/PROTOCOL.md names %q, which the code does not have", name)
		}
	}
}

// A page meeting a server of another protocol version says so on the page,
// without an error in the browser, and stops rather than misreading it.
func TestBrowserRefusesAnotherProtocolVersion(t *testing.T) {
	s := MustStart(t)
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var dials atomic.Int32
	// The real pages and scripts, but a websocket from a future server.
	future := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/ws") {
			proxy.ServeHTTP(w, r)
			return
		}
		dials.Add(1)
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"v":%d,"seq":0,"time":1,"type":"snapshot"}`, hub.Version+1))
		conn.ReadMessage() // until the page closes it
	}))
	defer future.Close()
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(future.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refusal shown", fmt.Sprintf(`document.querySelector('#conn').textContent.includes('protocol v%d, the server v%d: reload the page')`, hub.Version, hub.Version+1))
	time.Sleep(1500 * time.Millisecond) // past the first reconnect's backoff
	if n := dials.Load(); n != 1 {
		t.Fatalf("the page opened the websocket %d times; want once: it must not retry a server it cannot read", n)
	}
}
