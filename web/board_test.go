package web_test

import (
	"bytes"
	"context"
	"testing"

	"golang.org/x/net/html"

	"flowlab/web"
)

// The board page carries, before its first poll, the class's code, its QR
// and CSV addresses and every walkthrough the instructor may switch to.
func TestBoardPageNamesTheClassAndEveryWalk(t *testing.T) {
	b := web.Board{Code: "K7QF3M", Walks: []web.StartWalks{
		{Title: "Event-driven", Walks: []web.StartWalk{{ID: "exclusive-vs-durable", Title: "Exclusive vs durable"}}},
		{Title: "Work queue", Walks: []web.StartWalk{{ID: "poison-message", Title: "A poison message"}, {ID: "competing-workers", Title: "Competing workers"}}},
	}}
	var buf bytes.Buffer
	if err := web.BoardPage(b).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	byID := testIDs(doc)
	if got := text(byID["join-code"]); got != "K7QF3M" {
		t.Errorf("join code %q", got)
	}
	if got := attr(byID["join-qr"], "src"); got != "/classes/K7QF3M/qr.png" {
		t.Errorf("QR src %q", got)
	}
	if got := attr(byID["board-csv"], "href"); got != "/classes/K7QF3M/board.csv" {
		t.Errorf("CSV link %q", got)
	}
	if got := attr(byID["board"], "data-code"); got != "K7QF3M" {
		t.Errorf("board's data-code %q", got)
	}
	var options []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "option" {
			options = append(options, attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(byID["pace-walk-id"])
	if len(options) != 3 || options[0] != "exclusive-vs-durable" || options[1] != "poison-message" || options[2] != "competing-workers" {
		t.Errorf("walk choices %v", options)
	}
}
