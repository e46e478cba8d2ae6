package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// ?present= and ?spotlight= are read strictly: each once, present only 1
// or 0, spotlight only with present=1; a spotlight name that is not a
// class's display name is left out.
func TestPresentingOfReadsItsParametersStrictly(t *testing.T) {
	for _, c := range []struct {
		query string
		want  presenting
		err   string // in the error's message; "" for none
	}{
		{"", presenting{}, ""},
		{"present=1", presenting{On: true}, ""},
		{"present=0", presenting{Off: true}, ""},
		{"present=yes", presenting{}, `not "yes"`},
		{"present=", presenting{}, `not ""`},
		{"present=1&present=1", presenting{}, "given 2 times"},
		{"present=1&spotlight=Ada", presenting{On: true, Spotlight: "Ada"}, ""},
		{"present=1&spotlight=" + url.QueryEscape(" Zoë O'Neil-Smith_2. "), presenting{On: true, Spotlight: "Zoë O'Neil-Smith_2."}, ""},
		{"present=1&spotlight=" + strings.Repeat("a", 24), presenting{On: true, Spotlight: strings.Repeat("a", 24)}, ""},
		{"present=1&spotlight=" + strings.Repeat("a", 25), presenting{On: true}, ""},
		{"present=1&spotlight=" + url.QueryEscape("<b>Ada</b>"), presenting{On: true}, ""},
		{"present=1&spotlight=" + url.QueryEscape("Ada\u202e"), presenting{On: true}, ""},
		{"present=1&spotlight=%ff", presenting{On: true}, ""},
		{"present=1&spotlight=", presenting{On: true}, ""},
		{"present=1&spotlight=Ada&spotlight=Bo", presenting{}, "given 2 times"},
		{"spotlight=Ada", presenting{}, "present=1"},
		{"present=0&spotlight=Ada", presenting{}, "present=1"},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/labs/x/request-response?"+c.query, nil)
		got, err := presentingOf(r)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.query, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one saying %q", c.query, err, c.err)
		case c.err == "" && got != c.want:
			t.Errorf("%q: %+v, want %+v", c.query, got, c.want)
		}
	}
}

// A bad ?present= is a clear 400 page that starts nothing; presenter mode
// is the page's class; a spotlight's name is shown escaped, makes the view
// read-only even for the lab's maker, and an odd one is left out.
func TestPresenterPage(t *testing.T) {
	s := MustStart(t)
	lab, owner := s.ownedSandbox(t)
	get := func(query string, cookie *http.Cookie) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+lab+"/request-response?"+query, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, page := get("present=on", owner); code != http.StatusBadRequest || !strings.Contains(page, `present is 1 (presenter mode: large type for a projector) or 0 (leave it), not &#34;on&#34;`) {
		t.Errorf("present=on: %d %q, want 400 saying what present takes", code, page)
	}
	if code, page := get("present=1", owner); code != http.StatusOK || !strings.Contains(page, `<body class="presenter">`) ||
		!strings.Contains(page, `data-testid="keys-strip"`) || strings.Contains(page, "data-watching") {
		t.Errorf("present=1 for its maker: %d, want 200, the presenter class, the keys and the controls", code)
	}
	if _, page := get("", owner); strings.Contains(page, `class="presenter"`) || strings.Contains(page, `data-testid="keys-strip"`) {
		t.Error("the page is in presenter mode without present=1")
	}
	_, page := get("present=1&spotlight="+url.QueryEscape("Ada O'Neil"), owner)
	if !strings.Contains(page, `Spotlight: Ada O&#39;Neil's lab (read-only)`) || !strings.Contains(page, "data-watching") {
		t.Error("a spotlight does not name the learner, escaped, or is not read-only for the lab's maker")
	}
	// Every key of every pattern has its knob on the page: a renamed knob
	// would drop its key without a word.
	for pattern, n := range map[string]int{"request-response": 2, "event-driven": 6, "work-queue": 7, "async-messaging": 7, "compare": 1} {
		if got := strings.Count(s.pageAs(t, s.base+"/"+pattern+"?present=1", nil), "data-press="); got != n {
			t.Errorf("%s in presenter mode has %d keys, want %d", pattern, got, n)
		}
	}
	_, page = get("present=1&spotlight="+url.QueryEscape(`<script>alert(1)</script>`), nil)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, `data-testid="spotlight"`) {
		t.Error("an odd spotlight name is on the page")
	}
}
