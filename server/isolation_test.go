package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"flowlab/flow"
)

// ownedSandbox makes a sandbox and returns its lab's path and the owner
// cookie its maker was given.
func (s *server) ownedSandbox(t *testing.T) (string, *http.Cookie) {
	t.Helper()
	resp := s.newSandbox(t, s.URL)
	m := sandboxPath.FindStringSubmatch(resp.Header.Get("Location"))
	if m == nil {
		t.Fatalf("POST /labs: %d to %q, want a sandbox", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range resp.Cookies() {
		if c.Name == "flowlab_"+m[1] {
			return "/labs/" + m[1], c
		}
	}
	t.Fatalf("POST /labs set no cookie flowlab_%s: %v", m[1], resp.Header["Set-Cookie"])
	return "", nil
}

// wsAs opens a scenario's websocket from flowlab's own page, sending
// cookie if there is one, and reads its snapshot.
func (s *server) wsAs(t *testing.T, path string, cookie *http.Cookie) (*websocket.Conn, snapshotMsg) {
	t.Helper()
	h := http.Header{"Origin": {s.URL}}
	if cookie != nil {
		h.Set("Cookie", cookie.String())
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+path+"/ws", h)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	var snap snapshotMsg
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&snap); err != nil || snap.Type != "snapshot" || len(snap.Knobs) == 0 {
		t.Fatalf("%s: first message %+v, %v; want a snapshot", path, snap, err)
	}
	return conn, snap
}

// postAs posts to path from flowlab's own page with cookie, if any, and
// returns the status and the error kind of the answer.
func (s *server) postAs(t *testing.T, path string, cookie *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, nil)
	req.Header.Set("Origin", s.URL)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Kind string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Kind
}

func sendCommand(t *testing.T, conn *websocket.Conn, cmd string) reply {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	return readReply(t, conn)
}

// A sandbox answers only the browser that made it: anyone else with its
// link watches it, and every change they ask for is refused and changes
// nothing; another sandbox's token is no better than a forged one.
func TestSandboxAnswersOnlyItsMaker(t *testing.T) {
	s := MustStart(t)
	a, owner := s.ownedSandbox(t)
	b, other := s.ownedSandbox(t)
	if !owner.HttpOnly || owner.SameSite != http.SameSiteStrictMode || owner.Path != a || owner.Secure || owner.MaxAge != 0 || len(owner.Value) < 43 {
		t.Errorf("owner cookie %+v; want a session cookie for %s only, HttpOnly, SameSite=Strict, of 32 random bytes", owner, a)
	}
	scenario := a + "/request-response"
	_, before := s.wsAs(t, scenario, owner)

	forged := &http.Cookie{Name: owner.Name, Value: strings.Repeat("A", len(owner.Value))}
	othersToken := &http.Cookie{Name: owner.Name, Value: other.Value}
	for _, c := range []struct {
		name   string
		cookie *http.Cookie
	}{{"no cookie", nil}, {"forged token", forged}, {"another sandbox's cookie", other}, {"another sandbox's token", othersToken}} {
		conn, _ := s.wsAs(t, scenario, c.cookie)
		// It watches: traffic reaches it.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for sawFrame := false; !sawFrame; {
			var f frame
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("%s: no frame: %v", c.name, err)
			}
			sawFrame = f.Type == "frame"
		}
		for i, cmd := range []string{
			`{"id":1,"op":"set","knob":"latency_ms","value":250}`,
			`{"id":2,"op":"set","knob":"up","value":false}`,
			`{"id":3,"op":"reset"}`,
		} {
			r := sendCommand(t, conn, cmd)
			if r.OK || r.ID != i+1 || r.Kind != string(flow.Forbidden) || !strings.Contains(r.Error, "belongs to whoever made it") {
				t.Errorf("%s: %s answered %+v; want forbidden, saying whose sandbox it is", c.name, cmd, r)
			}
		}
		for _, p := range []string{scenario + "/reset", scenario + "/restart", a + "/reset"} {
			if status, kind := s.postAs(t, p, c.cookie); status != http.StatusForbidden || kind != string(flow.Forbidden) {
				t.Errorf("%s: POST %s answered %d %q; want 403 forbidden", c.name, p, status, kind)
			}
		}
	}
	conn, after := s.wsAs(t, scenario, owner)
	if got, want := knobValues(after.Knobs), knobValues(before.Knobs); !equalValues(got, want) {
		t.Fatalf("refused commands changed the knobs: %v, were %v", got, want)
	}

	// The maker changes it. Commands name knobs, presets and ops of their
	// own scenario only, never a queue, exchange or topic: nothing sent
	// over a's websocket can reach b, whose knobs stay as they were.
	_, bBefore := s.wsAs(t, b+"/request-response", other)
	if r := sendCommand(t, conn, `{"id":4,"op":"set","knob":"latency_ms","value":250}`); !r.OK || knobValues(r.Knobs)["latency_ms"] != float64(250) {
		t.Fatalf("the maker's set answered %+v", r)
	}
	if _, bAfter := s.wsAs(t, b+"/request-response", other); !equalValues(knobValues(bAfter.Knobs), knobValues(bBefore.Knobs)) {
		t.Errorf("a command to %s changed %s: %v, were %v", a, b, knobValues(bAfter.Knobs), knobValues(bBefore.Knobs))
	}
	if status, kind := s.postAs(t, scenario+"/reset", owner); status != http.StatusOK {
		t.Errorf("the maker's reset answered %d %q; want 200", status, kind)
	}
	// Its other scenarios were never opened: a lab reset starts over the one
	// running and answers at once for the rest, which are as they started.
	began := time.Now()
	if status, kind := s.postAs(t, a+"/reset", owner); status != http.StatusOK || time.Since(began) > 15*time.Second {
		t.Errorf("the maker's lab reset answered %d %q after %v; want 200 without waiting for runs that are not coming", status, kind, time.Since(began))
	}
}

// The default lab is the shared one a classroom's projector shows: anyone
// may change it, with no cookie.
func TestDefaultLabAnswersEveryone(t *testing.T) {
	s := MustStart(t)
	conn, _ := s.wsAs(t, s.base+"/request-response", nil)
	if r := sendCommand(t, conn, `{"id":1,"op":"set","knob":"latency_ms","value":250}`); !r.OK {
		t.Fatalf("a command to the default lab without a cookie answered %+v", r)
	}
	if status, kind := s.postAs(t, s.base+"/request-response/reset", nil); status != http.StatusOK {
		t.Errorf("a reset of the default lab without a cookie answered %d %q; want 200", status, kind)
	}
}

func equalValues(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// pageAs gets a scenario's page with cookie, if any.
func (s *server) pageAs(t *testing.T, path string, cookie *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The page tells a watcher so, and its maker not.
func TestSandboxPageSaysWhoMayChangeIt(t *testing.T) {
	s := MustStart(t)
	a, owner := s.ownedSandbox(t)
	if page := s.pageAs(t, a+"/request-response", owner); strings.Contains(page, "data-watching") || strings.Contains(page, `data-testid="watching"`) {
		t.Error("the maker's page says it only watches")
	}
	if page := s.pageAs(t, a+"/request-response", nil); !strings.Contains(page, "data-watching") || !strings.Contains(page, "Watching: this sandbox belongs to whoever made it") {
		t.Error("a page without the owner cookie does not say it only watches")
	}
	if page := s.pageAs(t, s.base+"/request-response", nil); strings.Contains(page, "data-watching") {
		t.Error("the default lab's page says it only watches")
	}
}

// A browser changes the sandbox it made; given another's link, it watches
// that one live, its controls disabled, with no error in its console.
func TestBrowserWatchesAnothersSandbox(t *testing.T) {
	s := MustStart(t)
	a, _ := s.ownedSandbox(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the default lab live", `document.querySelector('#conn.ok') !== null`)
	press(t, ctx, `[data-testid="new-sandbox"]`)
	waitJS(t, ctx, "its own sandbox live", `/^\/labs\/[a-z2-7]{8}\/request-response$/.test(location.pathname) && document.querySelector('#conn.ok') !== null`)
	waitJS(t, ctx, "its controls enabled", `document.querySelector('[data-testid="watching"]') === null &&
		[...document.querySelectorAll('.knobs input')].every((el) => !el.disabled)`)
	setKnob(t, ctx, "latency_ms", 250)
	var own string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`location.pathname`, &own)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the maker's change in its sandbox", func() bool {
		conn, snap := s.wsAs(t, own, nil)
		conn.Close()
		return knobValues(snap.Knobs)["latency_ms"] == float64(250)
	})

	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+a+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the sandbox live with traffic", `document.querySelector('#conn.ok') !== null &&
		Number((document.querySelector('dd[data-counter="calls"]')||{}).textContent) > 0`)
	waitJS(t, ctx, "the watching note and every control disabled", `document.querySelector('[data-testid="watching"]') !== null &&
		[...document.querySelectorAll('.switches button, .knobs input, .knobs select, .knobs button, #restart')].every((el) => el.disabled) &&
		document.querySelectorAll('.knobs input').length > 0`)
}
