package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"flowlab/web"
)

// The start page's lessons fit a 1280×720 projector in large type (the
// walkthroughs follow below them), and each of its links lands on its page
// with the first control to press lit up in view.
func TestBrowserStartPageAtAProjectorsSize(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "start page drawn", `document.querySelector('[data-testid="start"]') !== null`)
	var fit struct {
		Lines, Below, Height int
		Font                 float64
	}
	js := `(() => {
		const lines = [...document.querySelectorAll('.start-pattern li')];
		return { lines: lines.length, height: document.documentElement.scrollHeight,
			below: lines.filter((li) => li.getBoundingClientRect().bottom > innerHeight).length,
			font: Math.min(...lines.map((li) => parseFloat(getComputedStyle(li).fontSize))) };
	})()`
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &fit)); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d lines, smallest font %.0f px, page %d px high", fit.Lines, fit.Font, fit.Height)
	if fit.Lines != len(web.Lessons) || fit.Below != 0 || fit.Font < 18 {
		t.Errorf("%d lines (want %d), %d below 720 px, font %.0f px (want 18 at least)", fit.Lines, len(web.Lessons), fit.Below, fit.Font)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "start.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}

	// The start page's own links, read from it; the first is clicked as a
	// learner would, the others opened straight away.
	var hrefs map[string]string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll('[data-testid^="show-"]')].map((a) => [a.dataset.testid.slice(5), a.href]))`, &hrefs)); err != nil {
		t.Fatal(err)
	}
	for i, l := range web.Lessons {
		open := chromedp.Navigate(hrefs[l.ID])
		if i == 0 {
			open = chromedp.Click(`[data-testid="show-`+l.ID+`"]`, chromedp.ByQuery)
		}
		if err := chromedp.Run(ctx, open); err != nil {
			t.Fatal(err)
		}
		first := `document.querySelector('[data-testid="` + l.Controls[0] + `"].shown[data-step="1"]')`
		waitJS(t, ctx, l.ID+": its page live with "+l.Controls[0]+" lit up in view", `(() => {
			const el = `+first+`;
			if (!el || !document.querySelector('#conn.ok')) return false;
			const r = el.getBoundingClientRect();
			return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight + 1;
		})()`)
		var banner string
		if err := chromedp.Run(ctx, chromedp.Text(`[data-testid="show"]`, &banner, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(banner, l.Do) {
			t.Errorf("%s: the page says %q, want what to do: %q", l.ID, banner, l.Do)
		}
	}
}

// Jargon drawn on the diagram and in the knobs shows its definition on
// hover, on a tap of a touch screen, and on a click that presses nothing.
func TestBrowserGlossaryDefinesBadgesOnHoverAndTap(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/event-driven")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live with badges drawn", `document.querySelector('#conn.ok') !== null && [...document.querySelectorAll('#diagram tspan')].some((t) => t.textContent.startsWith('in memory'))`)
	def := func(term string) string {
		for _, g := range web.Glossary {
			if g.Term == term {
				return g.Def
			}
		}
		t.Fatalf("no term %q", term)
		return ""
	}
	popover := func(what, term string) {
		t.Helper()
		want, _ := json.Marshal(term + ": " + def(term))
		waitJS(t, ctx, what, `(() => { const b = document.getElementById('gloss');
			return b.matches(':popover-open') && b.textContent.includes(`+string(want)+`); })()`)
	}
	// centre is where a piece of the page is drawn now.
	centre := func(js string) (float64, float64) {
		t.Helper()
		var p []float64
		if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const r = (`+js+`).getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`, &p)); err != nil {
			t.Fatal(err)
		}
		return p[0], p[1]
	}

	// Hover: the mouse over the badge "in memory N" on inventory.
	x, y := centre(`[...document.querySelectorAll('#diagram [data-node="inventory"] tspan')].find((t) => t.textContent.startsWith('in memory'))`)
	if err := chromedp.Run(ctx, chromedp.MouseEvent(input.MouseMoved, x, y)); err != nil {
		t.Fatal(err)
	}
	popover("hovering the in-memory badge", "in memory")
	if err := chromedp.Run(ctx, chromedp.MouseEvent(input.MouseMoved, 5, 5)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "leaving the badge closes it", `!document.getElementById('gloss').matches(':popover-open')`)

	// Tap: a finger on the badge "exclusive temporary" on inventory's queue.
	x, y = centre(`[...document.querySelectorAll('#diagram [data-node="queue-inventory"] tspan')].find((t) => t.textContent.includes('exclusive'))`)
	if err := chromedp.Run(ctx,
		emulation.SetTouchEmulationEnabled(true),
		input.DispatchTouchEvent(input.TouchStart, []*input.TouchPoint{{X: x, Y: y}}),
		input.DispatchTouchEvent(input.TouchEnd, []*input.TouchPoint{}),
	); err != nil {
		t.Fatal(err)
	}
	popover("tapping the exclusive badge", "exclusive")

	// A click on the word in a checkbox's label defines it and ticks nothing.
	if err := chromedp.Run(ctx, chromedp.Click(`[data-testid="knob-order-service.mandatory"] .gloss`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	popover("clicking Mandatory", "mandatory")
	var ticked bool
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('k-order-service.mandatory').checked`, &ticked)); err != nil {
		t.Fatal(err)
	}
	if ticked {
		t.Error("clicking the word Mandatory ticked its box")
	}

	// A choice's label defines its options too, which a select cannot show.
	if err := chromedp.Run(ctx, chromedp.Click(`[data-testid="knob-inventory.queue"] label .gloss`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	popover("clicking Queue", "exclusive")
	popover("clicking Queue", "durable")

	// Keyboard: a term takes focus and shows its definition; Escape closes it.
	if err := chromedp.Run(ctx, chromedp.Focus(`[data-testid="knob-inventory.prefetch"] .gloss`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	popover("focusing Prefetch", "prefetch")
	var png []byte
	if chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)) == nil {
		os.WriteFile(filepath.Join(os.TempDir(), "flowlab-glossary.png"), png, 0o644)
	}
	if err := chromedp.Run(ctx, chromedp.KeyEvent("\x1b")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "Escape closes it", `!document.getElementById('gloss').matches(':popover-open')`)
}

// From the start page at the default settings, a learner sees a claim or a
// flaw in at most three actions: the link, then the controls it lights up,
// pressed in their order. Here: the breaker opening (and its OPEN defined as
// blocking calls), the exclusive queue losing what is sent while its consumer
// is stopped, and the missing Kafka consumer.
func TestBrowserLessonsShowInThreeActions(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ lesson, seen string }{
		{"no-resilience", `(() => { const b = document.querySelector('#diagram [data-node="breaker"].state-open');
			return b !== null && b.querySelector('.badges').textContent.startsWith('calls blocked'); })()`},
		{"exclusive-queue", `document.querySelector('#diagram [data-node="queue-inventory"].state-absent') !== null &&
			!document.querySelector('#diagram [data-node="queue-inventory"] .note').textContent.includes('exists') &&
			Number(document.querySelector('dd[data-counter="inventory.lost"]').textContent) >= 3`},
		{"no-consumer", `document.querySelector('#diagram .node.kind-member') === null &&
			Number((document.querySelector('#ledger [data-name="in-log"] b') || {}).textContent) >= 20`},
	} {
		var l web.Lesson
		for _, x := range web.Lessons {
			if x.ID == c.lesson {
				l = x
			}
		}
		actions := 1
		if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+"/"), chromedp.Click(`[data-testid="show-`+l.ID+`"]`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, l.ID+": live", `document.querySelector('#conn.ok') !== null && document.querySelector('[data-knob]') !== null`)
		for i := range l.Controls {
			step := `.shown[data-step="` + strconv.Itoa(i+1) + `"]`
			press(t, ctx, `button`+step+`, `+step+` button`)
			actions++
		}
		waitJS(t, ctx, l.ID+": seen after "+strconv.Itoa(actions)+" actions", c.seen)
		if actions > 3 {
			t.Errorf("%s took %d actions", l.ID, actions)
		}
		if l.ID == "no-resilience" {
			var p []float64
			if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const r = document.querySelector('#diagram [data-node="breaker"] .state-tag').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`, &p)); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Run(ctx, chromedp.MouseEvent(input.MouseMoved, p[0], p[1])); err != nil {
				t.Fatal(err)
			}
			waitJS(t, ctx, "OPEN defined as blocking calls", `(() => { const b = document.getElementById('gloss');
				return b.matches(':popover-open') && b.textContent.includes('breaker OPEN: The circuit breaker is blocking calls'); })()`)
		}
	}
}
