package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"flowlab/flow"
	"flowlab/web"
)

var patterns = []string{"request-response", "event-driven", "work-queue", "async-messaging"}

// Every claim and flaw is at most three actions from the start page: its
// link, then at most two controls to press.
func TestStartPageLinksEveryLessonToItsAction(t *testing.T) {
	titles := map[string]string{"request-response": "Request-response (HTTP)", "event-driven": "Event-driven (RabbitMQ fanout)",
		"work-queue": "Work queue (RabbitMQ)", "async-messaging": "Asynchronous messaging (Kafka)"}
	start := web.NewStart("default", titles, patterns)
	var buf bytes.Buffer
	if err := web.StartPage(start).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	byID := testIDs(doc)
	claims, flaws := 0, 0
	for _, l := range web.Lessons {
		if l.Flaw {
			flaws++
		} else {
			claims++
		}
		if n := len(l.Controls); n == 0 || n > 2 {
			t.Errorf("%s: %d controls to press, want 1 or 2 (3 actions from the start page at most)", l.ID, n)
		}
		a := byID["show-"+l.ID]
		if a == nil {
			t.Errorf("the start page has no link for %s", l.ID)
			continue
		}
		href := attr(a, "href")
		u, err := url.Parse(href)
		if err != nil || u.Path != "/labs/default/"+l.Scenario || u.Query().Get("show") != l.ID {
			t.Errorf("%s links to %q", l.ID, href)
		}
		if got, err := web.LessonFor(l.Scenario, l.ID); err != nil || got.ID != l.ID {
			t.Errorf("%s: its page would refuse it: %v", l.ID, err)
		}
		if !strings.Contains(text(byID["lesson-"+l.ID]), l.Says) {
			t.Errorf("%s: the line does not say %q", l.ID, l.Says)
		}
	}
	if claims < 4 || flaws < 8 {
		t.Errorf("%d claims and %d flaws: the article makes more", claims, flaws)
	}
	for _, h := range []string{"Request-response (HTTP)", "Asynchronous messaging (Kafka)"} {
		if !strings.Contains(page, h) {
			t.Errorf("the start page does not name %q", h)
		}
	}
}

func TestShowIsRefusedUnlessItsPageKnowsIt(t *testing.T) {
	for _, c := range []struct{ scenario, id string }{
		{"request-response", "nope"},
		{"request-response", ""},
		{"event-driven", "take-down"}, // a lesson of another page
		{"no-such-page", "take-down"},
	} {
		_, err := web.LessonFor(c.scenario, c.id)
		var fe *flow.Error
		if !errors.As(err, &fe) || fe.Kind != flow.Invalid {
			t.Errorf("LessonFor(%q, %q) = %v, want Invalid", c.scenario, c.id, err)
		}
	}
	if _, err := web.LessonFor("request-response", "nope"); err == nil || !strings.Contains(err.Error(), "take-down") {
		t.Errorf("the refusal %q does not name what the page can show", err)
	}
}

// A page asked to show a lesson says what it shows and lights up, numbered,
// exactly the controls the lesson names.
func TestScenarioPageLightsUpTheLessonsControls(t *testing.T) {
	show, err := web.LessonFor("request-response", "return-none")
	if err != nil {
		t.Fatal(err)
	}
	p := web.Page{Lab: "default", Scenario: "request-response", Title: "t", Show: &show,
		Knobs: []flow.Knob{
			{Name: "up", Group: "product-service", Label: "Up", Type: flow.BoolKnob, Value: true},
			{Name: "unknown_ids", Group: "order-service", Label: "Unknown ids", Type: flow.IntKnob, Max: 100, Value: 0},
			{Name: "timeout_ms", Group: "order-service", Label: "Timeout", Type: flow.IntKnob, Max: 100, Value: 0},
		}}
	var buf bytes.Buffer
	if err := web.ScenarioPage(p).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	byID := testIDs(doc)
	if got := text(byID["show"]); !strings.Contains(got, show.Says) || !strings.Contains(got, show.Watch) {
		t.Errorf("the banner says %q", got)
	}
	for id, step := range map[string]string{"knob-unknown_ids": "1", "switch-product-service": "2", "knob-timeout_ms": ""} {
		n := byID[id]
		if n == nil {
			t.Fatalf("no %s", id)
		}
		lit := strings.Contains(attr(n, "class"), "shown")
		if attr(n, "data-step") != step || lit != (step != "") {
			t.Errorf("%s: class %q, data-step %q; want step %q", id, attr(n, "class"), attr(n, "data-step"), step)
		}
	}
}

// The layout sends the glossary once, as JSON the page reads.
func TestLayoutSendsTheGlossary(t *testing.T) {
	var buf bytes.Buffer
	if err := web.ErrorPage("x").Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var sent []web.Term
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "script" && attr(n, "id") == "glossary" && n.FirstChild != nil {
			if err := json.Unmarshal([]byte(n.FirstChild.Data), &sent); err != nil {
				t.Fatal(err)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(sent) != len(web.Glossary) || sent[0].Def == "" {
		t.Errorf("the page got %d terms, want %d", len(sent), len(web.Glossary))
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
