package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// order-service's state on the diagram says what its callers get: None in
// place of every failure while errors are swallowed, failures once they are
// raised; a product-service that never answers piles calls up, and a timeout
// set then leaves the calls already waiting as they were, and says so.
func TestBrowserOrderServiceSaysWhatItsCallersGet(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	// is says that node is drawn in state; red, that its box is drawn red.
	is := func(node, state string) string {
		return `(document.querySelector('#diagram [data-node="` + node + `"].state-` + state + `') !== null)`
	}
	red := `(getComputedStyle(document.querySelector('#diagram [data-node="order-service"] .box')).stroke === 'rgb(196, 40, 28)')`
	waitJS(t, ctx, "calls ok", is("order-service", "ok")+` && `+nodeFact("order-service", "recent-calls")+` > 0`)

	press(t, ctx, `[data-testid="switch-product-service"]`)
	waitJS(t, ctx, "None returned, drawn red", is("order-service", "returns-None")+` && `+red)
	setKnob(t, ctx, "errors", "raise")
	waitJS(t, ctx, "failures raised, drawn red", is("order-service", "failing")+` && `+red)

	press(t, ctx, `[data-testid="switch-product-service"]`)
	setKnob(t, ctx, "hang", true)
	waitJS(t, ctx, "calls piling up", is("product-service", "hanging")+` && `+is("order-service", "blocked")+` && `+nodeFact("order-service", "blocked")+` >= 20`)
	setKnob(t, ctx, "timeout_ms", 200)
	waitJS(t, ctx, "the waiting calls' old timeout named", nodeFact("order-service", "blocked-old-timeout")+` >= 20 && `+
		`document.querySelector('#diagram [data-node="order-service"]').textContent.includes('waiting keep no timeout')`)
}
