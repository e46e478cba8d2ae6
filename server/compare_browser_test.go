package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// scoreJS is the JS for the number a Compare scorecard cell shows.
func scoreJS(col, name string) string {
	return `Number((document.querySelector('[data-testid="score-` + col + `-` + name + `"]')||{}).textContent)`
}

// The Compare tab's thesis at a glance: one press takes inventory down in
// all three columns; HTTP's callers fail while the brokers accept and hold
// the orders, and once inventory is back the brokers' columns catch up and
// every accepted order is fulfilled. The screenshot, taken while the
// columns are apart, leads the README.
func TestBrowserCompareColumnsDivergeThenConverge(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+s.base+"/compare")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
	setKnob(t, ctx, "load.rate", 10)
	waitJS(t, ctx, "every column fulfilling", scoreJS("http", "fulfilled")+` >= 20 && `+scoreJS("rabbitmq", "fulfilled")+` >= 20 && `+scoreJS("kafka", "fulfilled")+` >= 20`)
	time.Sleep(5 * time.Second) // the swimlanes before the outage
	press(t, ctx, `[data-testid="switch-inventory"]`)
	waitJS(t, ctx, "inventory down", nodeFact("kafka-inventory", "up")+` === false`)
	// Diverge: HTTP's callers fail; the brokers accept and hold.
	waitJS(t, ctx, "the columns diverge", scoreJS("http", "failed")+` >= 30 && `+scoreJS("rabbitmq", "backlog")+` >= 30 && `+scoreJS("kafka", "backlog")+` >= 30`)
	for _, col := range []string{"rabbitmq", "kafka"} {
		waitJS(t, ctx, col+" lost and failed nothing", scoreJS(col, "failed")+` === 0 && `+scoreJS(col, "lost")+` === 0`)
	}
	time.Sleep(4 * time.Second) // the outage, a band as wide as the time before it in the swimlanes
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('[data-testid="toast"]').hidden = true`, nil)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, filepath.Join("..", "docs", "compare-outage.png"))
	press(t, ctx, `[data-testid="switch-inventory"]`)
	// Converge: the backlogs drain and every accepted order is fulfilled.
	waitJS(t, ctx, "the columns converge", scoreJS("rabbitmq", "backlog")+` === 0 && `+scoreJS("kafka", "backlog")+` === 0 && `+nodeFact("rabbitmq", "catching-up")+` === false && `+nodeFact("kafka", "catching-up")+` === false`)
	for _, col := range []string{"rabbitmq", "kafka"} {
		waitJS(t, ctx, col+" fulfilled all it accepted", scoreJS(col, "fulfilled")+` === `+scoreJS(col, "accepted"))
	}
	waitJS(t, ctx, "HTTP's failures stay failed", scoreJS("http", "failed")+` >= 30 && `+scoreJS("http", "fulfilled")+` === `+scoreJS("http", "accepted"))
}
