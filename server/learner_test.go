package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	progressdb "flowlab/server/progress"
	"flowlab/walk"
)

// testWalks are walkthroughs as the start page sees them; nothing runs them.
func testWalks() []*walk.Walk {
	steps := func(n int) []*walk.Step {
		s := make([]*walk.Step, n)
		for i := range s {
			s[i] = &walk.Step{Kind: walk.KindRead, Title: "step"}
		}
		return s
	}
	return []*walk.Walk{
		{ID: "lost-while-away", Title: "Lost while away", Pattern: "event-driven", Minutes: 6,
			Learn: []string{"why an exclusive queue loses what is published while its consumer is away", "how a durable queue keeps it"}, Steps: steps(7)},
		{ID: "no-timeout", Title: "No timeout", Pattern: "request-response", Minutes: 4, Learn: []string{"why a hung callee hangs its caller"}, Steps: steps(5)},
		{ID: "replay", Title: "Replay from an offset", Pattern: "async-messaging", Minutes: 5, Learn: []string{"how a log is read again"}, Steps: steps(4)},
	}
}

// progressServer is a whole flowlab on free ports, its progress in path and
// the walks above loaded; stop ends it, as a restart's first half.
type progressServer struct {
	app  *App
	url  string
	stop func()
}

func startProgressServer(t *testing.T, path string, extra ...string) *progressServer {
	t.Helper()
	stderr := &lockedBuffer{}
	cfg, err := parseConfig(append([]string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab(), "-progress", path}, extra...),
		func(string) string { return "" }, stderr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := open(cfg, io.Discard, stderr)
	if err != nil {
		t.Fatal(err)
	}
	a.walkOrder = testWalks()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	s := &progressServer{app: a, url: "http://" + a.web.Addr().String()}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v\n%s", err, stderr.String())
			}
		case <-time.After(5 * time.Second):
			t.Error("flowlab took more than 5 s to stop")
		}
	}
	t.Cleanup(s.stop)
	return s
}

// getAs asks for path with the given cookie values of flowlab_learner.
func (s *progressServer) getAs(t *testing.T, path string, learners ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	for _, l := range learners {
		req.AddCookie(&http.Cookie{Name: learnerCookie, Value: l})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func setLearner(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == learnerCookie {
			return c
		}
	}
	return nil
}

func TestProgressFileDefaultsToTheXDGStateFolder(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"XDG_STATE_HOME": "/state", "HOME": "/home/ann"}, "/state/flowlab/progress.db"},
		{nil, map[string]string{"HOME": "/home/ann"}, "/home/ann/.local/state/flowlab/progress.db"},
		{nil, map[string]string{"XDG_STATE_HOME": "state", "HOME": "/home/ann"}, "/home/ann/.local/state/flowlab/progress.db"}, // relative: ignored, as the spec says
		{nil, map[string]string{"FLOWLAB_PROGRESS": "/srv/p.db", "HOME": "/home/ann"}, "/srv/p.db"},
		{[]string{"-progress", "here.db"}, map[string]string{"FLOWLAB_PROGRESS": "/srv/p.db"}, "here.db"},
		{nil, nil, ""},
	} {
		cfg, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err != nil || cfg.Progress != c.want {
			t.Errorf("%v %v: progress %q (%v), want %q", c.args, c.env, cfg.Progress, err, c.want)
		}
	}
	// With no default place, flowlab refuses to start, naming the setting.
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab()},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-progress / FLOWLAB_PROGRESS") {
		t.Errorf("no HOME and no -progress: %v, want a refusal naming -progress / FLOWLAB_PROGRESS", err)
	}
}

// The default folder is made 0700, under XDG_STATE_HOME as given.
func TestProgressFolderIsMadePrivate(t *testing.T) {
	state := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": state}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &lockedBuffer{}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab()},
			func(k string) string { return env[k] }, out, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "open http") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(state, "flowlab"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("folder %v (%v), want it made 0700", st, err)
	}
	if _, err := os.Stat(filepath.Join(state, "flowlab", "progress.db")); err != nil {
		t.Fatal(err)
	}
}

func TestSecondFlowlabOnTheProgressFileStopsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	startProgressServer(t, path)
	start := time.Now()
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab(), "-progress", path},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use by another flowlab") || !strings.Contains(err.Error(), path) {
		t.Errorf("second flowlab on %s: %v, want it refused as in use", path, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second flowlab took %v to give up", d)
	}
}

func TestUnreadableProgressFileStopsFlowlabAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	if err := os.WriteFile(path, []byte("learner,walk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab(), "-progress", path},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+" is not a readable flowlab progress file") {
		t.Errorf("flowlab on a text file as progress: %v, want it refused naming the file", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "learner,walk\n" {
		t.Errorf("the refused file was changed: %q", b)
	}
}

func TestLearnerCookieIsRandomAndForgedOnesAreReplaced(t *testing.T) {
	valid := progressdb.NewLearner()
	for _, c := range []struct {
		name    string
		cookies []string
		keep    bool
	}{
		{"none", nil, false},
		{"valid", []string{valid}, true},
		{"forged", []string{"admin"}, false},
		{"too long", []string{valid + "A"}, false},
		{"padded", []string{valid[:20] + "=="}, false},
		{"bits past 128", []string{strings.Repeat("A", 21) + "B"}, false},
		{"standard base64", []string{strings.Repeat("+", 22)}, false},
		{"doubled", []string{valid, progressdb.NewLearner()}, false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, v := range c.cookies {
			req.AddCookie(&http.Cookie{Name: learnerCookie, Value: v})
		}
		rec := httptest.NewRecorder()
		got := learner(rec, req)
		set := setLearner(rec.Result())
		if set == nil || set.Value != got || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || set.MaxAge < 300*24*3600 {
			t.Errorf("%s: cookie %+v for learner %q, want it HttpOnly, SameSite=Lax, Path=/, for a year", c.name, set, got)
		}
		if !progressdb.ValidLearner(got) || (got == valid) != c.keep {
			t.Errorf("%s: learner %q (valid %v), want the cookie's kept: %v", c.name, got, progressdb.ValidLearner(got), c.keep)
		}
	}
	if a, b := learner(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)), learner(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)); a == b {
		t.Errorf("two new learners got the same id %q", a)
	}
}

func TestStartPageListsWalksWithTheLearnersProgress(t *testing.T) {
	s := startProgressServer(t, filepath.Join(t.TempDir(), "progress.db"))
	resp, page := s.getAs(t, "/")
	me := setLearner(resp)
	if resp.StatusCode != http.StatusOK || me == nil || !progressdb.ValidLearner(me.Value) {
		t.Fatalf("first visit: %s, learner cookie %+v", resp.Status, me)
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	byID := byTestID(doc)
	for _, w := range testWalks() {
		item := byID["walk-"+w.ID]
		if item == nil {
			t.Fatalf("the start page does not list %s", w.ID)
		}
		line := textOf(item)
		for _, want := range []string{w.Title, "min", w.Learn[0]} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: %q lacks %q", w.ID, line, want)
			}
		}
		if w.Pattern == "event-driven" && strings.Contains(line, w.Learn[1]) {
			t.Errorf("%s: %q shows more than the first thing it teaches", w.ID, line)
		}
		if tick := strings.TrimSpace(textOf(byID["tick-"+w.ID])); tick != "" || byID["progress-"+w.ID] != nil {
			t.Errorf("%s: a new learner's line shows progress: tick %q", w.ID, tick)
		}
		form := byID["start-"+w.ID].Parent
		if form.Data != "form" || attrOf(form, "method") != "post" || attrOf(form, "action") != "/walks/"+w.ID {
			t.Errorf("%s: its button is in <%s method=%q action=%q>, want a POST to /walks/%s", w.ID, form.Data, attrOf(form, "method"), attrOf(form, "action"), w.ID)
		}
	}
	if dl := byID["download-progress"]; dl == nil || attrOf(dl, "href") != "/progress.json" {
		t.Error("the start page has no link to download one's progress")
	}
	// By pattern, in the patterns' order: request-response before event-driven before Kafka.
	rr, ed, am := strings.Index(page, `data-testid="walk-no-timeout"`), strings.Index(page, `data-testid="walk-lost-while-away"`), strings.Index(page, `data-testid="walk-replay"`)
	if !(rr < ed && ed < am) || !strings.Contains(page, "Event-driven") {
		t.Errorf("walks not in the patterns' order: %d %d %d", rr, ed, am)
	}

	// Three steps of one walk, all of another.
	rec := func(walk string, steps ...int) {
		for _, i := range steps {
			if err := s.app.learners.Record(me.Value, walk, func(w *progressdb.Walk) error { return w.MarkDone(i) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec("lost-while-away", 0, 1, 2)
	rec("replay", 0, 1, 2, 3)
	s.app.learners.Record(me.Value, "replay", func(w *progressdb.Walk) error { w.MarkFinished(time.Now()); return nil })
	_, page = s.getAs(t, "/", me.Value)
	doc, _ = html.Parse(strings.NewReader(page))
	byID = byTestID(doc)
	if got := textOf(byID["progress-lost-while-away"]); !strings.Contains(got, "3 of 7 steps") {
		t.Errorf("started walk says %q, want 3 of 7 steps", got)
	}
	if got := strings.TrimSpace(textOf(byID["tick-replay"])); got != "✓" || byID["progress-replay"] != nil {
		t.Errorf("finished walk: tick %q, want ✓ alone", got)
	}
	if got := strings.TrimSpace(textOf(byID["tick-lost-while-away"])); got != "" {
		t.Errorf("unfinished walk has a tick %q", got)
	}

	// Another browser, or one with a forged cookie, sees none of it.
	for _, cookie := range [][]string{nil, {"forged"}, {me.Value + "x"}, {me.Value, progressdb.NewLearner()}} {
		resp, page := s.getAs(t, "/", cookie...)
		if c := setLearner(resp); c == nil || c.Value == me.Value {
			t.Errorf("cookie %q: given %+v, want a new learner", cookie, c)
		}
		if strings.Contains(page, "of 7 steps") || strings.Contains(page, "✓</span>") && strings.Contains(page, `aria-label="finished"`) {
			t.Errorf("cookie %q: the page shows another learner's progress", cookie)
		}
	}
}

func TestProgressDownloadIsTheLearnersOwn(t *testing.T) {
	s := startProgressServer(t, filepath.Join(t.TempDir(), "progress.db"))
	me, other := progressdb.NewLearner(), progressdb.NewLearner()
	for _, l := range []string{me, other} {
		if err := s.app.learners.Record(l, "no-timeout", func(w *progressdb.Walk) error { return w.MarkPassed(3, l == other) }); err != nil {
			t.Fatal(err)
		}
	}
	type download struct {
		Learner *string `json:"learner"`
		Walks   []struct {
			Walk     string `json:"walk"`
			Title    string `json:"title"`
			Steps    int    `json:"steps"`
			Done     []int  `json:"done"`
			Assisted []int  `json:"assisted"`
		} `json:"walks"`
	}
	get := func(path string, cookies ...string) download {
		t.Helper()
		resp, body := s.getAs(t, path, cookies...)
		var d download
		if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %v: %s %q (%v)", path, cookies, resp.Status, body, err)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Disposition %q, Content-Type %q; want a JSON attachment", path, cd, resp.Header.Get("Content-Type"))
		}
		if setLearner(resp) != nil {
			t.Errorf("%s: the download set a learner cookie", path)
		}
		if d.Walks == nil {
			t.Errorf("%s %v: %q, want walks to be a list", path, cookies, body)
		}
		return d
	}
	d := get("/progress.json", me)
	if d.Learner == nil || *d.Learner != me || len(d.Walks) != 1 || d.Walks[0].Walk != "no-timeout" || d.Walks[0].Title != "No timeout" ||
		d.Walks[0].Steps != 5 || len(d.Walks[0].Done) != 1 || len(d.Walks[0].Assisted) != 0 {
		t.Errorf("own progress: %+v", d)
	}
	// Without the other's cookie there is no way to name them.
	for _, c := range []struct {
		path    string
		cookies []string
	}{
		{"/progress.json", nil},
		{"/progress.json?learner=" + other, nil},
		{"/progress.json?learner=" + other, []string{"forged"}},
		{"/progress.json", []string{other[:21]}},
		{"/progress.json", []string{me, other}},
	} {
		if d := get(c.path, c.cookies...); d.Learner != nil || len(d.Walks) != 0 {
			t.Errorf("%s with %v: %+v, want an empty list", c.path, c.cookies, d)
		}
	}
	if resp, _ := s.getAs(t, "/progress.json/"+other, me); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/progress.json/<id> answered %s", resp.Status)
	}
}

// Progress outlives flowlab: the same -progress file after a restart still
// ticks the walk the learner finished.
func TestStartPageTickSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := startProgressServer(t, path)
	resp, _ := s.getAs(t, "/")
	me := setLearner(resp).Value
	finish := walk.SessionState{Walk: "no-timeout", Steps: []walk.StepState{
		{Kind: walk.KindRead, Done: true}, {Kind: walk.KindPredict, Answer: "hangs", Done: true}, {Kind: walk.KindAct, Done: true},
		{Kind: walk.KindCheck, Status: "passed", Done: true}, {Kind: walk.KindExplain, Done: true}}}
	if err := s.app.recordSession(me, finish); err != nil {
		t.Fatal(err)
	}
	s.stop()

	s = startProgressServer(t, path)
	_, page := s.getAs(t, "/", me)
	doc, _ := html.Parse(strings.NewReader(page))
	if got := strings.TrimSpace(textOf(byTestID(doc)["tick-no-timeout"])); got != "✓" {
		t.Errorf("after a restart the finished walk's tick is %q, want ✓", got)
	}
}

// A walk's states, as its page is sent them, end up in the learner's
// progress once each: a state with nothing new writes nothing.
func TestSessionStatesAreRecordedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	s := startProgressServer(t, path)
	me := progressdb.NewLearner()
	yes := true
	st := walk.SessionState{Walk: "lost-while-away", Steps: []walk.StepState{
		{Kind: walk.KindRead, Done: true},
		{Kind: walk.KindPredict, Answer: "lost", Done: true},
		{Kind: walk.KindAct},
		{Kind: walk.KindCheck, Status: "waiting"},
	}}
	record := func() {
		t.Helper()
		if err := s.app.recordSession(me, st); err != nil {
			t.Fatal(err)
		}
	}
	record()
	st.Steps[2].Done = true
	st.Steps[3] = walk.StepState{Kind: walk.KindCheck, Status: "passed", Assisted: true, Done: true}
	st.Steps[1].Correct = &yes
	record()
	before, _ := os.Stat(path)
	time.Sleep(10 * time.Millisecond)
	record()
	if after, _ := os.Stat(path); !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a state with nothing new was written (mtime %v → %v)", before.ModTime(), after.ModTime())
	}
	p, _ := s.app.learners.Learner(me)
	w := p.Walks[0]
	if len(w.Done) != 4 || len(w.Passed) != 1 || len(w.Assisted) != 1 || len(w.Predictions) != 1 ||
		w.Predictions[0].Answer != "lost" || w.Predictions[0].Correct == nil || !*w.Predictions[0].Correct || w.Finished.IsZero() {
		t.Errorf("recorded %+v", w)
	}
	// The walk started again and answered otherwise: recorded, not refused.
	again := walk.SessionState{Walk: "lost-while-away", Steps: []walk.StepState{{Kind: walk.KindRead, Done: true}, {Kind: walk.KindPredict, Answer: "kept", Done: true}}}
	if err := s.app.recordSession(me, again); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.app.learners.Learner(me); p.Walks[0].Predictions[0].Answer != "kept" || len(p.Walks[0].Done) != 4 {
		t.Errorf("after a second run: %+v", p.Walks[0])
	}
	// A learner id not of the format is refused, and nothing is made for it.
	if err := s.app.recordSession("forged", st); err == nil {
		t.Error("a forged learner's state was recorded")
	}
}

// byTestID is every element of the page with a data-testid, by it.
func byTestID(n *html.Node) map[string]*html.Node {
	m := map[string]*html.Node{}
	for d := range n.Descendants() {
		if id := attrOf(d, "data-testid"); id != "" {
			m[id] = d
		}
	}
	return m
}

func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Learners at once, each recording and reading: each sees only their own,
// and nothing is lost.
func TestLearnersAtOnceSeeOnlyTheirOwn(t *testing.T) {
	s := startProgressServer(t, filepath.Join(t.TempDir(), "progress.db"))
	walks := testWalks()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			me := progressdb.NewLearner()
			w := walks[g%len(walks)]
			st := walk.SessionState{Walk: w.ID, Steps: make([]walk.StepState, len(w.Steps))}
			for i := range st.Steps {
				st.Steps[i] = walk.StepState{Kind: walk.KindRead, Done: true}
				if err := s.app.recordSession(me, st); err != nil {
					t.Error(err)
				}
				resp, page := s.getAs(t, "/", me)
				if resp.StatusCode != http.StatusOK || (i < len(st.Steps)-1) != strings.Contains(page, fmt.Sprintf("%d of %d steps", i+1, len(w.Steps))) {
					t.Errorf("learner %d after step %d: %s, page without its own progress", g, i, resp.Status)
				}
				_, body := s.getAs(t, "/progress.json", me)
				var d struct {
					Learner string `json:"learner"`
					Walks   []struct {
						Walk string `json:"walk"`
						Done []int  `json:"done"`
					} `json:"walks"`
				}
				if err := json.Unmarshal([]byte(body), &d); err != nil || d.Learner != me || len(d.Walks) != 1 || d.Walks[0].Walk != w.ID || len(d.Walks[0].Done) != i+1 {
					t.Errorf("learner %d after step %d: %s", g, i, body)
				}
			}
		})
	}
	wg.Wait()
}
