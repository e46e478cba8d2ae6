package web_test

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"flowlab/flow"
	"flowlab/web"
)

// The committed *_templ.go must be what the pinned templ generates from the
// .templ files, so `go run` needs no extra tool and never serves stale HTML.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	out, err := exec.Command("go", "tool", "templ", "generate", "-check", "-path", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("generated templ files are stale: run `go generate ./web` and commit the result\n%s", out)
	}
}

func TestScenarioPageDrawsEveryKnobWithItsValue(t *testing.T) {
	p := web.Page{
		Lab: "default", Scenario: "request-response", Title: "Request-response (HTTP)", Summary: "s",
		Tabs: []web.Tab{{Title: "Request-response (HTTP)", Href: "/labs/default/request-response", Current: true}},
		Knobs: []flow.Knob{
			{Name: "up", Group: "product-service", Label: "Up", Type: flow.BoolKnob, Value: true},
			{Name: "latency_ms", Group: "product-service", Label: "Latency", Type: flow.IntKnob, Min: 0, Max: 5000, Step: 50, Unit: "ms", Value: 250},
			{Name: "timeout_ms", Group: "order-service", Label: "Timeout", Type: flow.IntKnob, Min: 50, Max: 10000, Unit: "ms", Off: "none", Value: 0},
			{Name: "retry", Group: "order-service", Label: "Retry", Type: flow.ChoiceKnob, Choices: []flow.Choice{{Value: "none", Label: "none"}, {Value: "fixed", Label: "fixed"}}, Value: "fixed"},
			{Name: "crash", Group: "order-service", Label: "Crash", Type: flow.ActionKnob},
		},
		Presets: []flow.Preset{{Name: "article", Label: "As in the article"}},
		Brokers: []web.Broker{{Name: "Kafka", OK: true}, {Name: "RabbitMQ"}},
	}
	var buf bytes.Buffer
	if err := web.ScenarioPage(p).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	byID := testIDs(doc)
	for _, id := range []string{"diagram", "ledger", "counters", "chart", "log", "trace", "toast", "conn",
		"knob-up", "knob-latency_ms", "knob-timeout_ms", "knob-retry", "knob-crash",
		"switch-product-service", "preset-article", "broker-Kafka", "broker-RabbitMQ"} {
		if byID[id] == nil {
			t.Errorf("no element with data-testid=%q", id)
		}
	}
	if got := text(byID["knob-latency_ms"]); !strings.Contains(got, "250 ms") {
		t.Errorf("latency knob shows %q, want its value 250 ms", got)
	}
	if got := text(byID["knob-timeout_ms"]); !strings.Contains(got, "none") {
		t.Errorf("timeout knob shows %q, want none", got)
	}
	if got := text(byID["switch-product-service"]); got != "Take product-service down" {
		t.Errorf("switch says %q", got)
	}
	if got := text(byID["broker-RabbitMQ"]); !strings.Contains(got, "not answering") {
		t.Errorf("RabbitMQ pill says %q", got)
	}
}

// While flowlab's private RabbitMQ node starts, its pill says so instead of
// "not answering", and is not drawn as a failure.
func TestBrokerPillSaysAPrivateNodeIsStarting(t *testing.T) {
	p := web.Page{Lab: "default", Scenario: "event-driven", Title: "t", Brokers: []web.Broker{{Name: "RabbitMQ", Starting: true, Status: "starting a private RabbitMQ node… (4 s)"}}}
	var buf bytes.Buffer
	if err := web.ScenarioPage(p).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	pill := testIDs(doc)["broker-RabbitMQ"]
	if got := text(pill); !strings.Contains(got, "RabbitMQ starting…") {
		t.Errorf("RabbitMQ pill says %q", got)
	}
	for _, a := range pill.Attr {
		if a.Key == "class" && strings.Contains(a.Val, "bad") {
			t.Errorf("a starting node's pill has class %q", a.Val)
		}
	}
}

func testIDs(n *html.Node) map[string]*html.Node {
	m := map[string]*html.Node{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for _, a := range n.Attr {
			if a.Key == "data-testid" {
				m[a.Val] = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return m
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}
