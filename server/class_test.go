package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// classClient is one browser in a classroom test: its cookies, kept by name.
type classClient struct {
	t       *testing.T
	origin  string
	cookies map[string]*http.Cookie
}

// startClassServer runs flowlab whose sandboxes bear this test binary's
// instance name, so that TestMain deletes whatever a failed test left.
func startClassServer(t *testing.T) (*App, string) {
	a, u := startServer(t, func(a *App, _ string) { a.cfg.Instance = testTag + "k"; a.cfg.MaxLabs = 60 })
	return a, u[:strings.Index(u, "/labs/")]
}

func newClient(t *testing.T, origin string) *classClient {
	return &classClient{t: t, origin: origin, cookies: map[string]*http.Cookie{}}
}

// instructorOf is a browser that opened the link flowlab printed.
func instructorOf(t *testing.T, a *App, origin string) *classClient {
	t.Helper()
	c := newClient(t, origin)
	resp := c.do(http.MethodGet, "/teach?key="+url.QueryEscape(a.teachKey), "", "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/teach" {
		t.Fatalf("GET /teach?key=…: %d to %q, want 303 to /teach", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := c.cookies[teachCookie]
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("instructor cookie: %+v", ck)
	}
	return c
}

// do sends a request with the client's cookies and keeps what it is given;
// a form body is sent as a form, with the page's Origin.
func (c *classClient) do(method, path, body, contentType string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.origin+path, strings.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Content-Type", contentType)
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	for _, ck := range resp.Cookies() {
		c.cookies[ck.Name] = ck
	}
	return resp
}

func (c *classClient) form(path string, v url.Values) *http.Response {
	c.t.Helper()
	return c.do(http.MethodPost, path, v.Encode(), "application/x-www-form-urlencoded")
}

var boardPath = regexp.MustCompile(`^/classes/([A-HJKMNP-Z2-9]{6})/board$`)

// newClass starts a class on walk and returns its code.
func (c *classClient) newClass(walk string) string {
	c.t.Helper()
	resp := c.form("/classes", url.Values{"walk": {walk}})
	m := boardPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		body, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("POST /classes: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return m[1]
}

var joinedPath = regexp.MustCompile(`^/labs/((?:t\d{5}k-)?[a-z2-7]{8})/event-driven\?walk=exclusive-vs-durable$`)

// join joins class code as name and returns the sandbox's id.
func (c *classClient) join(code, name string) string {
	c.t.Helper()
	resp := c.form("/join", url.Values{"code": {code}, "name": {name}})
	m := joinedPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		body, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("POST /join as %q: %d to %q\n%s", name, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if c.cookies[classCookie] == nil || c.cookies[ownerCookie(m[1])] == nil {
		c.t.Fatalf("a join gave cookies %v", c.cookies)
	}
	return m[1]
}

// board reads board.json as the client; status and the board.
func (c *classClient) board(code string) (int, classBoard) {
	c.t.Helper()
	resp := c.do(http.MethodGet, "/classes/"+code+"/board.json", "", "")
	var b classBoard
	json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

// walkState is the learner's walk JSON, as their page reads it.
func (c *classClient) walkState(lab string) classWalkJSON {
	c.t.Helper()
	resp := c.do(http.MethodGet, "/labs/"+lab+"/walk", "", "")
	var st classWalkJSON
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET walk of %s: %d %v", lab, resp.StatusCode, err)
	}
	return st
}

// classWalkJSON is the walk JSON as a class member's page reads it.
type classWalkJSON struct {
	Walk  string         `json:"walk"`
	Step  int            `json:"step"`
	Since int64          `json:"since"`
	Steps []struct {
		Kind string `json:"kind"`
		Done bool   `json:"done"`
	} `json:"steps"`
	Class *classInfo `json:"class"`
}

// Learners join by code and name: a bad name or code is refused with a
// sentence and makes nothing; a taken name gets a suffix; each learner lands
// in a sandbox of their own on the class's walk, and the board lists them.
func TestClassJoin(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	before := labsAt(t, origin).Open

	ada := newClient(t, origin)
	for _, bad := range []struct{ code, name, want string }{
		{code, "", "1 to 24 characters"},
		{code, "   ", "1 to 24 characters"},
		{code, strings.Repeat("x", 25), "1 to 24 characters"},
		{code, "<script>", "letters, digits"},
		{code, "Ada;drop", "letters, digits"},
		{"ZZZZZZ", "Ada", "no class"},
	} {
		resp := ada.form("/join", url.Values{"code": {bad.code}, "name": {bad.name}})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusSeeOther || !strings.Contains(string(body), bad.want) {
			t.Errorf("join %q as %q: %d, want the form saying %q\n%s", bad.code, bad.name, resp.StatusCode, bad.want, body)
		}
	}
	if got := labsAt(t, origin).Open; got != before {
		t.Fatalf("refused joins opened %d labs", got-before)
	}
	if _, n, _ := a.learners.Counts(); n != 0 {
		t.Fatalf("refused joins made %d members", n)
	}

	// The code in any case, spaces around it.
	lab := ada.join(" "+strings.ToLower(code)+" ", " Ada ")
	ada2 := newClient(t, origin)
	lab2 := ada2.join(code, "ADA")
	if lab == lab2 {
		t.Fatal("two learners share a sandbox")
	}
	st := ada.walkState(lab)
	if st.Walk != "exclusive-vs-durable" || st.Class == nil || st.Class.Code != code || st.Class.Name != "Ada" || st.Class.Lock != -1 || st.Since == 0 {
		t.Fatalf("Ada's walk: %+v class %+v", st, st.Class)
	}
	if st := ada2.walkState(lab2); st.Class == nil || st.Class.Name != "ADA 2" {
		t.Fatalf("the second Ada's class: %+v", st.Class)
	}
	// Joining again with the class cookie goes back to the same sandbox:
	// never a second roster row.
	resp := ada.form("/join", url.Values{"code": {code}, "name": {"Ada"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/labs/"+lab+"/") {
		t.Fatalf("Ada joining again: %d to %q, want her sandbox %s", resp.StatusCode, loc, lab)
	}

	status, b := teacher.board(code)
	if status != http.StatusOK || b.V != 1 || b.Code != code || b.Walk.ID != "exclusive-vs-durable" || b.Walk.Pattern != "event-driven" ||
		len(b.Walk.Steps) == 0 || b.Lock != -1 || len(b.Learners) != 2 || !strings.HasSuffix(b.JoinURL, "/join/"+code) {
		t.Fatalf("board: %d %+v", status, b)
	}
	if l := b.Learners[0]; l.Name != "Ada" || l.Lab != lab || l.Step != 0 || l.Since == 0 || l.Checks == 0 || l.Answers == nil || l.Done == nil {
		t.Errorf("board's first learner: %+v", l)
	}
	if b.Learners[1].Name != "ADA 2" {
		t.Errorf("board's second learner: %+v", b.Learners[1])
	}
}
