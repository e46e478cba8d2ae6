package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"flowlab/web"
)

// `/` is the start page: every claim and flaw of the article, each linked to
// its page, which opens with the lesson's controls lit up.
func TestStartPageLinksLandOnTheirControls(t *testing.T) {
	s := MustStart(t)
	page := get(t, s.URL+"/")
	for _, l := range web.Lessons {
		href := l.Href(strings.TrimPrefix(s.base, "/labs/"))
		if !strings.Contains(page, `href="`+href+`"`) {
			t.Errorf("the start page has no link %s", href)
			continue
		}
		resp, err := http.Get(s.URL + href)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d", href, resp.StatusCode)
			continue
		}
		for _, c := range l.Controls {
			if !strings.Contains(string(body), `data-testid="`+c+`"`) {
				t.Errorf("%s: no control %s on its page", href, c)
			}
		}
		if got := strings.Count(string(body), `data-step="`); got != len(l.Controls) {
			t.Errorf("%s lights up %d controls, want %d", href, got, len(l.Controls))
		}
	}
}

// A show the page does not know is refused with a clear error.
func TestStartShowRefusesUnknownValues(t *testing.T) {
	s := MustStart(t)
	for _, q := range []string{"?show=nope", "?show=", "?show=decoupled", "?show=take-down&show=take-down"} {
		resp, err := http.Get(s.URL + s.base + "/request-response" + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "show") {
			t.Errorf("%s answered %d %q, want 400 naming show", q, resp.StatusCode, body)
		}
	}
}
