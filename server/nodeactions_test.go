package main

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// A node's main failures are pressed on the node itself: a click on
// product-service offers "take it down", which takes it down; on the
// event-driven page Enter on a focused consumer offers Stop and Crash, and
// Stop stops it. Nodes with nothing to press open nothing.
func TestBrowserNodesOfferTheirFailures(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null && document.querySelector('#diagram [data-node="product-service"].state-up') !== null`)
	press(t, ctx, `#diagram [data-node="outside-client"] .box`)
	waitJS(t, ctx, "no menu for a node with nothing to press", `document.querySelector('[data-testid="node-menu"]').hidden && !document.querySelector('#diagram [data-node="outside-client"]').hasAttribute('data-actions')`)
	press(t, ctx, `#diagram [data-node="product-service"] .box`)
	waitJS(t, ctx, "product-service's menu", `(() => { const m = document.querySelector('[data-testid="node-menu"]'); return !m.hidden && m.textContent.includes('product-service') && [...m.querySelectorAll('button')].some((b) => /down/i.test(b.textContent)); })()`)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('[data-testid="node-menu"] button')].find((b) => /down/i.test(b.textContent)).click()`, nil)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "product-service down, the menu closed", `document.querySelector('#diagram [data-node="product-service"].state-down') !== null && document.querySelector('[data-testid="node-menu"]').hidden`)

	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/event-driven")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "inventory up", `document.querySelector('#conn.ok') !== null && document.querySelector('#diagram [data-node="inventory"][data-actions].state-up') !== null`)
	if err := chromedp.Run(ctx, chromedp.Focus(`#diagram [data-node="inventory"]`, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "inventory's menu from the keyboard", `(() => { const m = document.querySelector('[data-testid="node-menu"]'); const items = [...m.querySelectorAll('button')].map((b) => b.textContent); return !m.hidden && items.includes('Stop') && items.includes('Crash') && document.activeElement === m && !document.querySelector('#diagram [data-node="inventory"].state-stopped'); })()`)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll('[data-testid="node-menu"] button')].find((b) => b.textContent === 'Stop').click()`, nil)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "inventory stopped", `document.querySelector('#diagram [data-node="inventory"].state-stopped') !== null`)
}
