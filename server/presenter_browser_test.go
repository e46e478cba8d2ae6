package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// presenterKeys is, per pattern, a key of presenter mode and what it does,
// as the pressed node's typed facts show it.
var presenterKeys = map[string]struct{ key, what, effect string }{
	"request-response": {"d", "product-service down", nodeFact("product-service", "up") + ` === false`},
	"event-driven":     {"s", "inventory stopped, its queue without consumer", nodeFact("queue-inventory", "consumers") + ` === 0`},
	"work-queue":       {"c", "worker-1 crashed", nodeFact("worker-1", "up") + ` === false`},
	"async-messaging":  {"c", "m1 crashed, two members left of three", nodeFact("inventory", "members") + ` === 2`},
	"compare":          {"d", "inventory down in the HTTP column", nodeFact("http-inventory", "up") + ` === false`},
}

// Every pattern page in presenter mode, at 1280×720: every text of the first
// screen, the diagram's included, is drawn at 20 px or more, the diagram is
// whole, the knobs are folded behind one button, a letter typed in a field
// sends nothing, the pattern's key does what it says, and "?" lists the keys
// in a dialog that Escape closes. Request-response mid-failure is
// docs/presenter.png.
func TestBrowserPresenterMode(t *testing.T) {
	s := MustStart(t)
	pages := patternPages(t, s)
	if len(pages) != len(presenterKeys) {
		t.Errorf("pattern pages %v, want one for each of the %d patterns with keys", pages, len(presenterKeys))
	}
	for _, href := range pages {
		page := href[strings.LastIndex(href, "/")+1:]
		t.Run(page, func(t *testing.T) { presenterPage(t, s, href, page) })
	}
	t.Run("toggle", func(t *testing.T) { presenterToggle(t, s) })
}

// The header's toggle turns presenter mode on; the tab keeps it on another
// pattern opened without ?present=, until the toggle turns it off.
func presenterToggle(t *testing.T, s *server) {
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live, not presenting", `document.querySelector('#conn.ok') !== null && document.body?.classList.contains('presenter') === false`)
	pressJS(t, ctx, `[data-testid="present-toggle"]`)
	waitSelector(t, ctx, `body.presenter [data-testid="present-toggle"][aria-pressed="true"]`)
	// Live: its script ran, and the tab keeps presenter mode.
	waitJS(t, ctx, "presenting", `document.querySelector('#conn.ok') !== null && document.body?.classList.contains('presenter') && location.search === '?present=1' &&
		document.querySelector('[data-testid="present-toggle"]')?.getAttribute('aria-pressed') === 'true'`)
	// A link followed, as from the start page: the address has no ?present=.
	if err := chromedp.Run(ctx, chromedp.Evaluate(`location.assign('`+s.base+`/event-driven')`, nil)); err != nil {
		t.Fatal(err)
	}
	waitSelector(t, ctx, `body.presenter [data-testid="present-toggle"][aria-pressed="true"]`)
	waitJS(t, ctx, "still presenting on another pattern", `document.querySelector('#conn.ok') !== null && document.body?.classList.contains('presenter') && location.pathname.endsWith('/event-driven')`)
	pressJS(t, ctx, `[data-testid="present-toggle"]`)
	waitSelector(t, ctx, `body:not(.presenter) [data-testid="present-toggle"][aria-pressed="false"]`)
	waitJS(t, ctx, "not presenting", `document.readyState === 'complete' && document.body?.classList.contains('presenter') === false && location.search === '' && location.pathname.endsWith('/event-driven')`)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a redirect to presenter mode would have come
	waitJS(t, ctx, "still not presenting", `document.querySelector('#conn.ok') !== null && document.body?.classList.contains('presenter') === false && location.search === ''`)
}

func presenterPage(t *testing.T, s *server, href, page string) {
	k, ok := presenterKeys[page]
	if !ok {
		t.Fatalf("no key tested for %s", page)
	}
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+href+"?present=1")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, page+" live in presenter mode", `document.body?.classList.contains('presenter') && document.querySelector('#conn.ok') !== null &&
		document.querySelectorAll('#diagram .node[data-facts]').length > 0`)
	time.Sleep(700 * time.Millisecond) // frames enough for every node's badges
	var problems []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), chromedp.Evaluate(presenterJS, &problems)); err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s in presenter mode at 1280×720: %s", page, p)
	}
	if len(problems) > 0 {
		shot := filepath.Join(os.TempDir(), "flowlab-presenter-"+page+".png")
		shoot(t, ctx, shot)
		t.Logf("the page as measured: %s", shot)
	}

	// Folded, and one button unfolds the knobs.
	waitJS(t, ctx, page+" knobs folded", `getComputedStyle(document.querySelector('.knobs')).display === 'none'`)
	pressJS(t, ctx, `[data-testid="knobs-fold"]`)
	waitJS(t, ctx, page+" knobs unfolded", `getComputedStyle(document.querySelector('.knobs')).display !== 'none' &&
		document.querySelector('[data-testid="knobs-fold"]').getAttribute('aria-expanded') === 'true'`)
	pressJS(t, ctx, `[data-testid="knobs-fold"]`)

	// The key typed into a field is the field's.
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('log-filter').focus()`, nil), chromedp.KeyEvent(k.key)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	var fired bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(k.effect, &fired)); err != nil {
		t.Fatal(err)
	}
	if fired {
		t.Errorf("%s: %q typed in the log's filter did what the key does: %s", page, k.key, k.what)
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('log-filter').value = ''; document.getElementById('log-filter').blur()`, nil),
		chromedp.KeyEvent(k.key)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, page+": "+k.what, k.effect)

	// "?" lists this pattern's keys; Escape closes the list.
	if err := chromedp.Run(ctx, chromedp.KeyEvent("?")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, page+" keys listed", `(() => { const d = document.querySelector('[data-testid="keys"]'); return d.open &&
		[...d.querySelectorAll('.keys-list kbd')].some((k) => k.textContent === '`+strings.ToUpper(k.key)+`') &&
		d.contains(document.activeElement); })()`)
	if err := chromedp.Run(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, page+" keys closed by Escape", `!document.querySelector('[data-testid="keys"]').open`)
	if page == "request-response" {
		time.Sleep(time.Second) // refused calls drawn on their way
		if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('[data-testid="toast"]').hidden = true; window.scrollTo(0, 0)`, nil)); err != nil {
			t.Fatal(err)
		}
		shoot(t, ctx, filepath.Join("..", "docs", "presenter.png"))
	}
}

// A learner's sandbox in the spotlight, opened by someone else, says whose
// it is and that it is read-only; a key there says so instead of sending,
// and the lab is as it was.
func TestBrowserSpotlightIsReadOnly(t *testing.T) {
	s := MustStart(t)
	lab, _ := s.ownedSandbox(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720),
		chromedp.Navigate(s.URL+lab+"/request-response?present=1&spotlight="+url.QueryEscape("Ada O'Neil"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live, product-service up", `document.querySelector('#conn.ok') !== null && `+nodeFact("product-service", "up")+` === true`)
	waitJS(t, ctx, "the spotlight note", `document.querySelector('[data-testid="spotlight"]').textContent === "Spotlight: Ada O'Neil's lab (read-only)" &&
		document.querySelector('[data-testid="watching"]') === null`)
	if err := chromedp.Run(ctx, chromedp.KeyEvent("d")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the key refused with the note", `(() => { const t = document.querySelector('[data-testid="toast"]');
		return !t.hidden && t.classList.contains('error') && t.textContent.startsWith("Spotlight: Ada O'Neil's lab (read-only)"); })()`)
	time.Sleep(time.Second)
	waitJS(t, ctx, "product-service still up", nodeFact("product-service", "up")+` === true`)
	conn, snap := s.wsAs(t, lab+"/request-response", nil)
	conn.Close()
	if v := knobValues(snap.Knobs)["up"]; v != true {
		t.Errorf("the sandbox's up knob is %v after a key in the spotlight, want true", v)
	}
}

// presenterJS returns every problem of the first screen in presenter mode:
// a text (an element's own words, an SVG text by its drawn size, a key hint
// drawn by CSS) under 20 px, a node not wholly inside the diagram, the
// diagram not wholly on the first screen.
const presenterJS = `(() => {
  const problems = [];
  const vw = innerWidth, vh = innerHeight;
  const fmt = (r) => '[' + [r.left, r.top, r.right, r.bottom].map((v) => Math.round(v)).join(',') + ']';
  const onScreen = (r) => r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < vh && r.left < vw;
  const inside = (r, o) => r.left >= o.left - 0.5 && r.top >= o.top - 0.5 && r.right <= o.right + 0.5 && r.bottom <= o.bottom + 0.5;
  const seen = new Set();
  // Below the first screen, a whole subtree (the log, the chart) is passed by.
  const below = { acceptNode: (n) => n.nodeType === Node.ELEMENT_NODE && getComputedStyle(n).display !== 'contents' && n.getBoundingClientRect().top >= vh ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, below);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.nodeType !== Node.TEXT_NODE) continue;
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || seen.has(el) || el.closest('title, script, style, dialog:not([open])')) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    let rects = [...range.getClientRects()];
    if (!rects.length && el.closest('svg')) rects = [el.getBoundingClientRect()];
    if (!rects.some(onScreen)) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || Number(cs.opacity) === 0) continue;
    seen.add(el);
    let px = parseFloat(cs.fontSize);
    if (el.closest('svg')) px *= el.getScreenCTM().a;
    if (px < 19.95) problems.push('"' + n.textContent.trim().slice(0, 40) + '" (' + el.tagName.toLowerCase() + '.' + [...el.classList].join('.') + ') is ' + px.toFixed(1) + ' px');
  }
  for (const el of document.querySelectorAll('[data-key]')) {
    const after = getComputedStyle(el, '::after');
    if (after.content === 'none' || !onScreen(el.getBoundingClientRect())) continue;
    if (parseFloat(after.fontSize) < 19.95) problems.push('the key hint of "' + el.textContent.trim() + '" is ' + after.fontSize);
  }
  for (const b of document.querySelectorAll('.keys-strip button, [data-testid="knobs-fold"]')) {
    const r = b.getBoundingClientRect();
    if (!inside(r, { left: 0, top: 0, right: vw, bottom: vh }) || !inside(r, b.closest('.side').getBoundingClientRect())) problems.push('the button "' + b.textContent.trim() + '" ' + fmt(r) + ' is not wholly on the first screen');
  }
  const svg = document.querySelector('#diagram');
  const view = svg.getBoundingClientRect();
  if (!inside(view, { left: 0, top: 0, right: vw, bottom: vh })) problems.push('the diagram ' + fmt(view) + ' is not wholly on the first screen');
  for (const g of svg.querySelectorAll('.node')) {
    const r = g.getBoundingClientRect();
    if (!inside(r, view)) problems.push('node ' + g.dataset.node + ' ' + fmt(r) + ' is clipped by the diagram ' + fmt(view));
  }
  return problems;
})()`

// pressJS presses a button as a script does: what it does, not where it is.
func pressJS(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('`+selector+`').click()`, nil)); err != nil {
		t.Fatalf("press %s: %v", selector, err)
	}
}

// waitSelector waits for selector across the navigations a press starts,
// which an evaluation in waitJS would not outlive.
func waitSelector(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.WaitReady(selector, chromedp.ByQuery)); err != nil {
		t.Fatalf("%s: %v", selector, err)
	}
}
