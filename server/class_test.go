package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// classClient is one browser in a classroom test: its cookies, kept by name.
type classClient struct {
	t       testing.TB
	origin  string
	cookies map[string]*http.Cookie
	http    *http.Client // from a loopback address of its own, as each laptop comes from its own
}

// clientSeq numbers the test clients, each given its own address.
var clientSeq atomic.Int64

// classServer is a flowlab run for a classroom test.
type classServer struct {
	a      *App
	origin string
	stop   func()
}

// runClassServer runs flowlab on the progress file at path; its sandboxes
// bear this test binary's instance name, so that TestMain deletes whatever
// a failed test left.
func runClassServer(t testing.TB, path string, extra ...string) *classServer {
	t.Helper()
	stderr := &lockedBuffer{}
	args := append([]string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0",
		"-lab", testLab(), "-progress", path, "-instance", testTag + "k", "-max-labs", "120"}, extra...)
	cfg, err := parseConfig(args, func(string) string { return "" }, stderr)
	if err != nil {
		t.Fatal(err)
	}
	stdout := &lockedBuffer{}
	a, err := open(cfg, stdout, stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	s := &classServer{a: a, origin: "http://" + a.web.Addr().String()}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run returned %v\n%s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Error("flowlab took more than 10 s to stop")
			}
		})
	}
	t.Cleanup(s.stop)
	// The instructor's link is printed at start, with the key.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), "instructor: "+s.origin+"/teach?key="+a.teachKey+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("flowlab printed no instructor link:\n%s", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func startClassServer(t *testing.T) (*App, string) {
	s := runClassServer(t, filepath.Join(t.TempDir(), "progress.db"))
	return s.a, s.origin
}

func newClient(t testing.TB, origin string) *classClient {
	n := clientSeq.Add(1)
	c := fromAddr(fmt.Sprintf("127.0.%d.%d", 10+n/250, 1+n%250))
	t.Cleanup(c.CloseIdleConnections)
	return &classClient{t: t, origin: origin, cookies: map[string]*http.Cookie{}, http: c}
}

// instructorOf is a browser that opened the link flowlab printed.
func instructorOf(t testing.TB, a *App, origin string) *classClient {
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
	resp, err := c.http.Do(req)
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
	Walk  string `json:"walk"`
	Step  int    `json:"step"`
	Since int64  `json:"since"`
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

	// Each refusal from a browser of its own: one browser trying eight
	// times at once meets the join rate limit.
	for _, bad := range []struct{ code, name, want string }{
		{code, "", "1 to 24 characters"},
		{code, "   ", "1 to 24 characters"},
		{code, strings.Repeat("x", 25), "1 to 24 characters"},
		{code, "<script>", "letters, digits"},
		{code, "Ada;drop", "letters, digits"},
		{"ZZZZZZ", "Ada", "no class"},
	} {
		resp := newClient(t, origin).form("/join", url.Values{"code": {bad.code}, "name": {bad.name}})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusSeeOther || !strings.Contains(string(body), bad.want) {
			t.Errorf("join %q as %q: %d, want the form saying %q\n%s", bad.code, bad.name, resp.StatusCode, bad.want, body)
		}
	}
	ada := newClient(t, origin)
	resp := ada.do(http.MethodGet, "/join/ZZZZZZ", "", "")
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `data-testid="join-form"`) {
		t.Errorf("an unknown code's join page: %d, want 404 with the form", resp.StatusCode)
	}
	if resp := ada.do(http.MethodGet, "/join/"+strings.ToLower(code), "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the class's join page: %d", resp.StatusCode)
	} else if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), `value="`+code+`"`) {
		t.Errorf("the join page does not fill in the code %s", code)
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
	resp = ada.form("/join", url.Values{"code": {code}, "name": {"Ada"}})
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

// forbidden says whether resp is the instructor-only refusal: the JSON error
// for data, the page otherwise.
func forbidden(t *testing.T, resp *http.Response, asJSON bool) bool {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden {
		return false
	}
	if asJSON {
		var e map[string]string
		return json.Unmarshal(body, &e) == nil && e["kind"] == "forbidden" && e["error"] == notInstructor
	}
	return strings.Contains(string(body), "This is the instructor&#39;s page: open the link flowlab printed when it started.")
}

// Only the instructor's key opens the instructor's pages, the board, its
// exports and pacing: no cookie, a forged one, a wrong key and a learner's
// cookies are all refused and change nothing. A learner's cookie of one
// class counts for nothing in another, and their sandbox cookie drives only
// their own sandbox.
func TestClassAnswersOnlyTheInstructor(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	other := teacher.newClass("exclusive-vs-durable")
	ada := newClient(t, origin)
	adaLab := ada.join(code, "Ada")
	bob := newClient(t, origin)
	bobLab := bob.join(code, "Bob")

	nobody := newClient(t, origin)
	forged := newClient(t, origin)
	forged.cookies[teachCookie] = &http.Cookie{Name: teachCookie, Value: strings.Repeat("A", len(a.teachKey))}
	almost := newClient(t, origin)
	almost.cookies[teachCookie] = &http.Cookie{Name: teachCookie, Value: a.teachKey[:len(a.teachKey)-1]}
	for name, c := range map[string]*classClient{"no cookie": nobody, "a forged cookie": forged, "a cut key": almost, "a learner": ada} {
		if resp := c.do(http.MethodGet, "/teach", "", ""); !forbidden(t, resp, false) {
			t.Errorf("%s: GET /teach %d, want the 403 page", name, resp.StatusCode)
		}
		if resp := c.form("/classes", url.Values{"walk": {"exclusive-vs-durable"}}); !forbidden(t, resp, false) {
			t.Errorf("%s: POST /classes %d, want the 403 page", name, resp.StatusCode)
		}
		for _, p := range []string{"board.json", "board.csv", "qr.png"} {
			if resp := c.do(http.MethodGet, "/classes/"+code+"/"+p, "", ""); !forbidden(t, resp, true) {
				t.Errorf("%s: GET %s %d, want the 403 JSON", name, p, resp.StatusCode)
			}
		}
		if resp := c.do(http.MethodPost, "/classes/"+code+"/pace", `{"op":"step","step":2}`, "application/json"); !forbidden(t, resp, true) {
			t.Errorf("%s: pace %d, want the 403 JSON", name, resp.StatusCode)
		}
		if c.cookies[teachCookie] != nil && c != forged && c != almost {
			t.Errorf("%s was given the instructor's cookie", name)
		}
	}
	for _, key := range []string{"wrong", a.teachKey + "x", strings.ToUpper(a.teachKey)} {
		c := newClient(t, origin)
		if resp := c.do(http.MethodGet, "/teach?key="+url.QueryEscape(key), "", ""); !forbidden(t, resp, false) || c.cookies[teachCookie] != nil {
			t.Errorf("key %q: %d, cookie %v; want the 403 page and no cookie", key, resp.StatusCode, c.cookies[teachCookie])
		}
	}
	if n, _, _ := a.learners.Counts(); n != 2 {
		t.Errorf("refused requests made classes: %d, want 2", n)
	}
	if st := ada.walkState(adaLab); st.Step != 0 {
		t.Errorf("a refused pace moved Ada to %d", st.Step)
	}

	// The instructor reads the board, the CSV and the QR code; another
	// class's code that does not exist is a 404.
	if resp := teacher.do(http.MethodGet, "/teach", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("the instructor's page: %d", resp.StatusCode)
	} else {
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), code) || !strings.Contains(string(body), "/classes/"+code+"/board") {
			t.Errorf("the instructor's page lists no class %s", code)
		}
		// Every shipped walkthrough may start a class, under its pattern.
		for _, w := range a.walkOrder {
			if !strings.Contains(string(body), `data-testid="class-walk-`+w.ID+`"`) {
				t.Errorf("the instructor's page offers no class on %s", w.ID)
			}
		}
		if !strings.Contains(string(body), "<legend>Request-response (HTTP)</legend>") {
			t.Error("the instructor's page does not group the walkthroughs by pattern")
		}
	}
	resp := teacher.do(http.MethodGet, "/classes/"+code+"/qr.png", "", "")
	img, err := png.Decode(resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil || img.Bounds().Dx() < 512 {
		t.Errorf("qr.png: %d %v %v", resp.StatusCode, err, img)
	}
	resp = teacher.do(http.MethodGet, "/classes/"+code+"/board.csv", "", "")
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][0] != "Ada" || rows[2][0] != "Bob" || rows[1][1] != "1" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="flowlab-`+code+`.csv"` {
		t.Errorf("board.csv: %v %q %s", err, rows, resp.Header.Get("Content-Disposition"))
	}
	if resp := teacher.do(http.MethodGet, "/classes/ZZZZZZ/board.json", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown class's board: %d, want 404", resp.StatusCode)
	}

	// Ada's class cookie in another class is no cookie: the form, not her
	// sandbox; joining there makes her a new learner of that class only.
	resp = ada.do(http.MethodGet, "/join/"+other, "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("Ada's cookie on another class's join page: %d to %q, want the form", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, b := teacher.board(other); len(b.Learners) != 0 {
		t.Errorf("another class's board lists %+v", b.Learners)
	}
	// A forged class cookie is no cookie either.
	eve := newClient(t, origin)
	eve.cookies[classCookie] = &http.Cookie{Name: classCookie, Value: strings.Repeat("A", 43)}
	if resp := eve.do(http.MethodGet, "/join/"+code, "", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("a forged class cookie: %d to %q, want the form", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Ada's cookies drive her sandbox, not Bob's.
	resp = ada.do(http.MethodPost, "/labs/"+bobLab+"/walk", `{"op":"go","step":1}`, "application/json")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Ada acting in Bob's sandbox: %d, want 403", resp.StatusCode)
	}
	if st := bob.walkState(bobLab); st.Step != 0 || st.Class.Name != "Bob" {
		t.Errorf("Bob's walk after Ada's try: %+v", st)
	}
	if resp := ada.do(http.MethodPost, "/labs/"+adaLab+"/walk", `{"op":"go","step":1}`, "application/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("Ada in her own sandbox: %d", resp.StatusCode)
	}
}

// fromAddr is an HTTP client whose connections come from ip, one of the
// loopback addresses, as a learner's laptop would come from its own.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// A flood of joins with random codes, from one address and from many, gets
// 404s then 429s and creates nothing: no class, no learner, no sandbox.
func TestJoinFloodCreatesNothing(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	before := labsAt(t, origin).Open
	flood := func(c *http.Client, n int) (notFound, tooMany int) {
		for i := range n {
			v := url.Values{"code": {fmt.Sprintf("Q%05d", i)}, "name": {"Mallory"}}
			req, _ := http.NewRequest(http.MethodPost, origin+"/join", strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusNotFound:
				notFound++
			case http.StatusTooManyRequests:
				tooMany++
			default:
				t.Fatalf("a random code's join: %d", resp.StatusCode)
			}
		}
		return
	}
	// One address: its burst of 10, at 2 a code, then 429s; what the
	// budget refills while the flood runs lets a few more through.
	start := time.Now()
	nf, tm := flood(fromAddr("127.0.0.1"), 100)
	if most := (joinBurst + int(time.Since(start).Seconds()*joinRate)) / 2; nf > most+1 || nf+tm != 100 {
		t.Errorf("one address: %d 404s, %d 429s; want at most %d 404s", nf, tm, most+1)
	}
	// Many addresses: the global limit holds them all.
	var wg sync.WaitGroup
	var mu sync.Mutex
	nfAll := 0
	start = time.Now()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nf, _ := flood(fromAddr(fmt.Sprintf("127.0.1.%d", i+1)), 10)
			mu.Lock()
			nfAll += nf
			mu.Unlock()
		}()
	}
	wg.Wait()
	if most := (joinGlobalBurst + int(time.Since(start).Seconds()*joinGlobalRate)) / 2; nfAll > most+1 {
		t.Errorf("40 addresses got %d 404s, past the global limit's %d (at 2 a code)", nfAll, most+1)
	}
	if c, m, _ := a.learners.Counts(); c != 1 || m != 0 {
		t.Errorf("the flood left %d classes, %d learners; want 1 and 0", c, m)
	}
	if got := labsAt(t, origin).Open; got != before {
		t.Errorf("the flood opened %d labs", got-before)
	}
	// A learner from an address of their own still joins.
	time.Sleep(time.Second)
	ada := newClient(t, origin)
	ada.join(code, "Ada")
}

// classLab is a learner's sandbox, its event-driven scenario and session.
func classLab(t *testing.T, a *App, lab string) (*scenarioRun, *labWalk) {
	t.Helper()
	l, ok := a.lab(lab)
	if !ok {
		t.Fatalf("no lab %s", lab)
	}
	s, _ := l.scenario("event-driven")
	return s, l.currentWalk()
}

func (c *classClient) pace(code, body string) (int, map[string]any) {
	c.t.Helper()
	resp := c.do(http.MethodPost, "/classes/"+code+"/pace", body, "application/json")
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Each pacing command changes every learner's session: step moves them,
// lock holds them, pause sets each load to 0 and refuses a learner's change
// of it, resume sets it back, fire presses the act in each sandbox, and walk
// starts another walkthrough in each, the same sandbox.
func TestPaceChangesEveryLearner(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	ada, bob := newClient(t, origin), newClient(t, origin)
	labs := []string{ada.join(code, "Ada"), bob.join(code, "Bob")}
	clients := []*classClient{ada, bob}

	for _, bad := range []string{`{"op":"step","step":99}`, `{"op":"step"}`, `{"op":"jump","step":1}`, `{"op":"walk","walk":"nope"}`,
		`{"op":"lock","step":-2}`, `{"op":"fire"}`, `{"op":"resume"}`, `{"op":"step","step":1,"x":1}`, `{"op":"step","step":1}{}`} {
		if status, out := teacher.pace(code, bad); status == http.StatusOK {
			t.Errorf("%s: %d %v, want an error", bad, status, out)
		}
	}
	if status, out := teacher.pace(code, `{"op":"step","step":2}`); status != http.StatusOK || out["step"] != float64(2) {
		t.Fatalf("step 2: %d %v", status, out)
	}
	for i, c := range clients {
		if st := c.walkState(labs[i]); st.Step != 2 || st.Class.Lock != -1 {
			t.Errorf("learner %d after step 2: step %d lock %d", i, st.Step, st.Class.Lock)
		}
	}
	if status, out := teacher.pace(code, `{"op":"lock","step":2}`); status != http.StatusOK || out["lock"] != float64(2) {
		t.Fatalf("lock 2: %d %v", status, out)
	}
	for i, c := range clients {
		if st := c.walkState(labs[i]); st.Class.Lock != 2 {
			t.Errorf("learner %d's lock: %d", i, st.Class.Lock)
		}
		_, lw := classLab(t, a, labs[i])
		lw.session.Move(2) // the act is done by fire below; the lock holds go
	}

	// Pause: every load to 0, a learner's change refused, resume sets it back.
	before := knobValue(must(classLab(t, a, labs[0])), "order-service.rate")
	if status, out := teacher.pace(code, `{"op":"pause"}`); status != http.StatusOK || out["paused"] != true {
		t.Fatalf("pause: %d %v", status, out)
	}
	for i, c := range clients {
		s, _ := classLab(t, a, labs[i])
		if v := knobValue(s, "order-service.rate"); string(v) != "0" {
			t.Errorf("learner %d's load while paused: %s", i, v)
		}
		r := s.handle([]byte(`{"id":1,"op":"set","knob":"order-service.rate","value":5}`), true).(reply)
		if !strings.Contains(r.Error, "paused by your instructor") {
			t.Errorf("learner %d's change while paused: %+v", i, r)
		}
		if st := c.walkState(labs[i]); !st.Class.Paused {
			t.Errorf("learner %d's walk does not say paused", i)
		}
	}
	// A pattern stopped for want of a browser and woken again starts with
	// its knobs' defaults: its load stays 0 while the class is paused.
	l0, _ := a.lab(labs[0])
	s0 := must(classLab(t, a, labs[0]))
	l0.life.Lock()
	s0.halt()
	l0.life.Unlock()
	if err := a.wake(l0, s0, true); err != nil {
		t.Fatal(err)
	}
	if v := knobValue(s0, "order-service.rate"); string(v) != "0" {
		t.Errorf("a paused load woken again: %s", v)
	}
	if status, out := teacher.pace(code, `{"op":"resume"}`); status != http.StatusOK || out["paused"] != false {
		t.Fatalf("resume: %d %v", status, out)
	}
	for i := range labs {
		if v := knobValue(must(classLab(t, a, labs[i])), "order-service.rate"); string(v) != string(before) {
			t.Errorf("learner %d's load after resume: %s, want %s", i, v, before)
		}
	}

	// Fire: the act of step 2 in both sandboxes at once.
	status, out := teacher.pace(code, `{"op":"fire"}`)
	if status != http.StatusOK || out["done"] != float64(2) || len(out["failed"].([]any)) != 0 {
		t.Fatalf("fire: %d %v", status, out)
	}
	for i := range labs {
		_, lw := classLab(t, a, labs[i])
		deadline := time.Now().Add(20 * time.Second)
		for st := lw.session.State(); !st.Steps[2].Done; st = lw.session.State() {
			if time.Now().After(deadline) {
				t.Fatalf("learner %d's act never finished: %+v", i, st.Steps[2])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Fired again, it is done: each learner's refusal is reported.
	if status, out := teacher.pace(code, `{"op":"fire"}`); status != http.StatusOK || out["done"] != float64(0) || len(out["failed"].([]any)) != 2 {
		t.Errorf("fire again: %d %v", status, out)
	}

	// Walk: another walkthrough, at step 0, in the same sandboxes; made
	// while the class is paused, its load stays 0 until the class resumes.
	if status, out := teacher.pace(code, `{"op":"pause"}`); status != http.StatusOK {
		t.Fatalf("pause: %d %v", status, out)
	}
	for i := range labs {
		l, _ := a.lab(labs[i])
		for _, s := range l.scenarios {
			if v := knobValue(s, loadKnob[s.Name()]); string(v) != "0" {
				t.Errorf("learner %d's %s load while paused: %s", i, s.Name(), v)
			}
		}
	}
	if status, out := teacher.pace(code, `{"op":"walk","walk":"no-timeout"}`); status != http.StatusOK || out["step"] != float64(0) {
		t.Fatalf("walk: %d %v", status, out)
	}
	for i, c := range clients {
		if st := c.walkState(labs[i]); st.Walk != "no-timeout" || st.Step != 0 || st.Class == nil || !st.Class.Paused {
			t.Errorf("learner %d after the walk change: %+v", i, st)
		}
		l, _ := a.lab(labs[i])
		s, _ := l.scenario("request-response")
		if v := knobValue(s, "rate"); string(v) != "0" {
			t.Errorf("learner %d's load after a walk change while paused: %s", i, v)
		}
	}
	if status, out := teacher.pace(code, `{"op":"resume"}`); status != http.StatusOK {
		t.Fatalf("resume: %d %v", status, out)
	}
	for i := range labs {
		l, _ := a.lab(labs[i])
		s, _ := l.scenario("request-response")
		if v := knobValue(s, "rate"); string(v) == "0" {
			t.Errorf("learner %d's load after resume: still 0", i)
		}
	}
}

func must(s *scenarioRun, _ *labWalk) *scenarioRun { return s }

// A restart keeps the class, its roster and each learner's place: a
// returning learner gets a sandbox rebuilt on the step they were on, and no
// second roster row.
func TestClassSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := runClassServer(t, path)
	teacher := instructorOf(t, s.a, s.origin)
	code := teacher.newClass("exclusive-vs-durable")
	ada := newClient(t, s.origin)
	lab := ada.join(code, "Ada")
	ada.do(http.MethodPost, "/labs/"+lab+"/walk", `{"op":"go","step":1}`, "application/json")
	if resp := ada.do(http.MethodPost, "/labs/"+lab+"/walk", `{"op":"answer","step":1,"choice":"lost"}`, "application/json"); resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("answer: %d %s", resp.StatusCode, body)
	}
	key := s.a.teachKey
	s.stop()

	s = runClassServer(t, path)
	if s.a.teachKey != key {
		t.Fatal("the instructor's key changed with the restart")
	}
	ada.origin, teacher.origin = s.origin, s.origin
	if _, b := teacher.board(code); len(b.Learners) != 1 || b.Learners[0].Step != 1 || b.Learners[0].Answers["1"] != "lost" || b.Learners[0].Online {
		t.Fatalf("the board after a restart: %+v", b)
	}
	resp := ada.do(http.MethodGet, "/join/"+code, "", "")
	m := joinedPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil || m[1] == lab {
		t.Fatalf("Ada returning: %d to %q, want a new sandbox", resp.StatusCode, resp.Header.Get("Location"))
	}
	st := ada.walkState(m[1])
	if st.Walk != "exclusive-vs-durable" || st.Step != 1 || st.Class == nil || st.Class.Name != "Ada" {
		t.Fatalf("Ada's rebuilt walk: %+v", st)
	}
	// Back again: the same sandbox, one roster row, her answer kept.
	if resp := ada.do(http.MethodGet, "/join", "", ""); !strings.HasPrefix(resp.Header.Get("Location"), "/labs/"+m[1]+"/") {
		t.Errorf("Ada back again: %d to %q, want %s", resp.StatusCode, resp.Header.Get("Location"), m[1])
	}
	if _, b := teacher.board(code); len(b.Learners) != 1 || b.Learners[0].Lab != m[1] || b.Learners[0].Answers["1"] != "lost" {
		t.Errorf("the board after Ada's return: %+v", b.Learners)
	}
}
