package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"flowlab/walk"
)

// walkClient is a learner's browser on one walkthrough's sandbox.
type walkClient struct {
	t       *testing.T
	origin  string // http://host:port
	lab     string // its id
	cookie  *http.Cookie
	learner *http.Cookie // who the browser is, for its progress
}

var walkStart = regexp.MustCompile(`^/labs/((?:t\d{5}w-)?[a-z2-7]{8})/event-driven\?walk=exclusive-vs-durable$`)

// startWalkServer runs flowlab whose sandboxes bear this test binary's
// instance name, so that TestMain deletes whatever a failed test left.
func startWalkServer(t *testing.T) (*App, string) {
	a, url := startServer(t, func(a *App, _ string) { a.cfg.Instance = testTag + "w" })
	return a, url[:strings.Index(url, "/labs/")]
}

// mustStartWalk posts the walkthrough's start button as its form does.
func mustStartWalk(t *testing.T, origin string) *walkClient {
	t.Helper()
	resp := post(t, origin+"/walks/exclusive-vs-durable", origin, nil, "")
	m := walkStart.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /walks/exclusive-vs-durable: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c := &walkClient{t: t, origin: origin, lab: m[1]}
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case ownerCookie(m[1]):
			c.cookie = ck
		case learnerCookie:
			c.learner = ck
		}
	}
	if c.cookie == nil || !c.cookie.HttpOnly || c.cookie.Path != "/labs/"+m[1] {
		t.Fatalf("no HttpOnly owner cookie for /labs/%s among %v", m[1], resp.Cookies())
	}
	return c
}

// post sends body to url with Origin origin (none when "") and cookies.
func post(t *testing.T, url, origin string, cookie *http.Cookie, body string, more ...*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for _, c := range append([]*http.Cookie{cookie}, more...) {
		if c != nil {
			req.AddCookie(c)
		}
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// act posts an action and returns the status and the answer's body.
func (c *walkClient) act(body string, cookie *http.Cookie, origin string) (int, map[string]any) {
	c.t.Helper()
	resp := post(c.t, c.origin+"/labs/"+c.lab+"/walk", origin, cookie, body, c.learner)
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s: answer is not JSON: %v", body, err)
	}
	return resp.StatusCode, out
}

func (c *walkClient) state() (int, walk.SessionState) {
	c.t.Helper()
	resp, err := http.Get(c.origin + "/labs/" + c.lab + "/walk")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st walk.SessionState
	json.NewDecoder(resp.Body).Decode(&st)
	return resp.StatusCode, st
}

// A walkthrough starts in a fresh sandbox of the learner's, and only its
// owner, from flowlab's own page, may act in it; every malformed action is
// refused and changes nothing.
func TestWalkRunsInAFreshSandboxOnlyItsOwnerDrives(t *testing.T) {
	a, origin := startWalkServer(t)
	before := labsAt(t, origin).Open
	if resp := post(t, origin+"/walks/exclusive-vs-durable", "http://evil.example", nil, ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a foreign page's start: %d, want 400", resp.StatusCode)
	}
	if resp := post(t, origin+"/walks/no-such-walk", origin, nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown walk: %d, want 404", resp.StatusCode)
	}
	if got := labsAt(t, origin).Open; got != before {
		t.Fatalf("refused starts opened labs: %d, was %d", got, before)
	}
	c := mustStartWalk(t, origin)
	other := mustStartWalk(t, origin)
	if c.lab == other.lab {
		t.Fatal("two walks share a sandbox")
	}

	code, st := c.state()
	if code != http.StatusOK || st.Walk != "exclusive-vs-durable" || st.Lab != c.lab || st.Step != 0 || len(st.Steps) < 5 {
		t.Fatalf("GET walk: %d %+v", code, st)
	}
	if code, out := c.act(`{"op":"go","step":1}`, c.cookie, origin); code != http.StatusOK || out["step"] != float64(1) {
		t.Fatalf("go to step 1: %d %v", code, out)
	}
	// The learner's progress keeps the step done, by the learner cookie
	// starting the walk gave.
	if c.learner == nil {
		t.Fatal("starting a walk gave no learner cookie")
	}
	req, _ := http.NewRequest(http.MethodGet, origin+"/progress.json", nil)
	req.AddCookie(c.learner)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var progress struct {
		Walks []struct {
			Walk string `json:"walk"`
			Done []int  `json:"done"`
		} `json:"walks"`
	}
	json.NewDecoder(resp.Body).Decode(&progress)
	resp.Body.Close()
	if len(progress.Walks) != 1 || progress.Walks[0].Walk != "exclusive-vs-durable" || !slices.Contains(progress.Walks[0].Done, 0) {
		t.Fatalf("the learner's progress: %+v, want step 0 of exclusive-vs-durable done", progress)
	}

	forged := &http.Cookie{Name: c.cookie.Name, Value: strings.Repeat("A", len(c.cookie.Value))}
	others := &http.Cookie{Name: c.cookie.Name, Value: other.cookie.Value}
	for _, bad := range []struct {
		what, body, origin string
		cookie             *http.Cookie
		status             int
	}{
		{"no cookie", `{"op":"go","step":0}`, origin, nil, http.StatusForbidden},
		{"a forged cookie", `{"op":"go","step":0}`, origin, forged, http.StatusForbidden},
		{"another lab's cookie", `{"op":"go","step":0}`, origin, others, http.StatusForbidden},
		{"a foreign page", `{"op":"go","step":0}`, "http://evil.example", c.cookie, http.StatusBadRequest},
		{"junk after the object", `{"op":"go","step":0} x`, origin, c.cookie, http.StatusBadRequest},
		{"a second object", `{"op":"go","step":0}{"op":"go","step":0}`, origin, c.cookie, http.StatusBadRequest},
		{"a duplicate key", `{"op":"go","step":0,"step":0}`, origin, c.cookie, http.StatusBadRequest},
		{"a key in another case", `{"OP":"go","step":0}`, origin, c.cookie, http.StatusBadRequest},
		{"a key by Unicode folding", `{"op":"go","\u017ftep":0}`, origin, c.cookie, http.StatusBadRequest},
		{"an unknown key", `{"op":"go","step":0,"force":true}`, origin, c.cookie, http.StatusBadRequest},
		{"a huge number", `{"op":"go","step":1e400}`, origin, c.cookie, http.StatusBadRequest},
		{"a number past int", `{"op":"go","step":99999999999999999999}`, origin, c.cookie, http.StatusBadRequest},
		{"a fraction", `{"op":"go","step":0.5}`, origin, c.cookie, http.StatusBadRequest},
		{"no step", `{"op":"go"}`, origin, c.cookie, http.StatusBadRequest},
		{"null", `{"op":null,"step":0}`, origin, c.cookie, http.StatusBadRequest},
		{"not an object", `["go",0]`, origin, c.cookie, http.StatusBadRequest},
		{"nothing", ``, origin, c.cookie, http.StatusBadRequest},
		{"more than 1 KiB", `{"op":"answer","step":1,"choice":"` + strings.Repeat("x", 1100) + `"}`, origin, c.cookie, http.StatusBadRequest},
		{"an unknown op", `{"op":"win","step":1}`, origin, c.cookie, http.StatusBadRequest},
		{"a step past the end", `{"op":"go","step":999}`, origin, c.cookie, http.StatusBadRequest},
	} {
		code, out := c.act(bad.body, bad.cookie, bad.origin)
		if code != bad.status || out["error"] == "" || out["kind"] == "" {
			t.Errorf("%s: %d %v, want %d with an error and its kind", bad.what, code, out, bad.status)
		}
	}
	if _, st := c.state(); st.Step != 1 || st.Steps[1].Answer != "" {
		t.Fatalf("refused actions changed the walk: step %d, answer %q", st.Step, st.Steps[1].Answer)
	}

	// A flood is refused before it reaches the session. Sent all at once,
	// so that however slow this machine, they outrun the refill.
	var limited atomic.Int32
	var flood sync.WaitGroup
	for range 3 * walkActionBurst {
		flood.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, origin+"/labs/"+c.lab+"/walk", strings.NewReader(`{"op":"go","step":999}`))
			req.Header.Set("Origin", origin)
			req.AddCookie(c.cookie)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited.Add(1)
			}
		})
	}
	flood.Wait()
	if limited.Load() == 0 {
		t.Fatalf("%d actions at once were all taken", 3*walkActionBurst)
	}

	// Resetting the lab as a whole ends its walk; tearing it down too.
	if resp := post(t, origin+"/labs/"+c.lab+"/reset", origin, c.cookie, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("lab reset: %d", resp.StatusCode)
	}
	if code, _ := c.state(); code != http.StatusNotFound {
		t.Fatalf("after the lab's reset GET walk: %d, want 404", code)
	}
	l, _ := a.lab(other.lab)
	a.teardown(context.Background(), l, "test")
	if code, _ := other.state(); code != http.StatusNotFound {
		t.Fatalf("after the teardown GET walk: %d, want 404", code)
	}
	if l.currentWalk() != nil {
		t.Fatal("the torn-down lab still holds its walk")
	}
}

// A pattern page lists its walkthroughs, and shows the panel of the one its
// lab runs; a bad ?walk= link is refused.
func TestPatternPageShowsItsWalkthroughs(t *testing.T) {
	_, origin := startWalkServer(t)
	c := mustStartWalk(t, origin)
	page := get(t, origin+"/labs/"+c.lab+"/event-driven?walk=exclusive-vs-durable")
	for _, want := range []string{`data-testid="walk"`, `data-walk="exclusive-vs-durable"`, "This walkthrough runs in a fresh sandbox of yours, so it starts from a known state.", `action="/walks/exclusive-vs-durable"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the walk's page lacks %s", want)
		}
	}
	if !strings.Contains(get(t, origin+"/labs/"+c.lab+"/event-driven"), `data-testid="walk"`) {
		t.Error("the lab's page without ?walk= does not show the walk it runs")
	}
	if strings.Contains(get(t, origin+"/labs/"+c.lab+"/request-response"), `data-testid="walk"`) {
		t.Error("another pattern's page shows the walk")
	}
	for q, status := range map[string]int{"?walk=nosuch": 404, "?walk=exclusive-vs-durable&walk=exclusive-vs-durable": 400} {
		resp, err := http.Get(origin + "/labs/" + c.lab + "/event-driven" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("%s: %d, want %d", q, resp.StatusCode, status)
		}
	}
	resp, err := http.Get(origin + "/labs/" + c.lab + "/request-response?walk=exclusive-vs-durable")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an event-driven walk on request-response: %d, want 400", resp.StatusCode)
	}
}
