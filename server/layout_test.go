package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screen is a laptop or projector a learner may open flowlab on.
type screen struct{ w, h int64 }

var layoutScreens = []screen{{1280, 800}, {1280, 720}}

// layoutStates are the settings each page is measured in, beyond its
// defaults: those that add badges, widen nodes or move them.
var layoutStates = map[string][]struct {
	name string
	set  func(t *testing.T, ctx context.Context)
}{
	"request-response": {
		{"as in the article", pressPreset("article")},
		{"product-service down", func(t *testing.T, ctx context.Context) {
			press(t, ctx, `[data-testid="switch-product-service"]`)
			waitJS(t, ctx, "product-service down", `document.querySelector('#diagram [data-node="product-service"].state-down') !== null`)
		}},
	},
	"event-driven": {
		{"inventory in manual-ack mode", func(t *testing.T, ctx context.Context) {
			setKnob(t, ctx, "inventory.ack", "manual")
			waitJS(t, ctx, "manual ack on inventory", `/manual ack/.test(document.querySelector('#diagram [data-node="inventory"] .badges').textContent)`)
		}},
		{"reliable", pressPreset("reliable")},
		{"inventory stopped, its durable queue filling", func(t *testing.T, ctx context.Context) {
			press(t, ctx, `[data-knob="inventory.stop"] button`)
			waitJS(t, ctx, "inventory stopped", `document.querySelector('#diagram [data-node="inventory"].state-stopped') !== null`)
			waitJS(t, ctx, "its queue filling", nodeFact("queue-inventory", "ready")+` >= 5`)
		}},
	},
	"work-queue": {
		{"flaky mail server", pressPreset("flaky")},
	},
	"compare": {
		{"inventory down, the columns apart", func(t *testing.T, ctx context.Context) {
			press(t, ctx, `[data-testid="switch-inventory"]`)
			waitJS(t, ctx, "HTTP failing, the brokers holding a backlog", `document.querySelector('#diagram [data-node="http"].state-failing') !== null && `+
				nodeFact("rabbitmq", "backlog")+` > 0 && `+nodeFact("kafka", "backlog")+` > 0`)
		}},
	},
	"async-messaging": {
		{"as in the article", pressPreset("article")},
		{"a burst of 1000 events", func(t *testing.T, ctx context.Context) {
			pressPreset("reliable")(t, ctx) // the article runs no consumer
			press(t, ctx, `[data-knob="send-1000"] button`)
			waitJS(t, ctx, "the burst processed", `Number(document.querySelector('#counters dd[data-counter="processed"]').textContent) >= 1000`)
		}},
		{"m1 crashed, its partitions orphaned", func(t *testing.T, ctx context.Context) {
			press(t, ctx, `[data-knob="m1-crash"] button`)
			waitJS(t, ctx, "a partition orphaned", `document.querySelector('#diagram .node.kind-partition.state-orphaned') !== null`)
		}},
	},
}

func pressPreset(name string) func(t *testing.T, ctx context.Context) {
	return func(t *testing.T, ctx context.Context) {
		press(t, ctx, `[data-testid="preset-`+name+`"]`)
		waitJS(t, ctx, "preset "+name+" applied", `(() => { const t = document.querySelector('[data-testid="toast"]'); return !t.hidden && /applied/.test(t.textContent); })()`)
	}
}

// Every pattern page, at 1280×800 and 1280×720, shows its whole diagram and
// its ledger on the first screen, with no label over another and no text
// under the path of the marks; an event-log line cut short carries its
// full text in its title. The first screen of each page, in its last state,
// at 1280×720, is the page's picture in docs/.
func TestLayoutFitsTheFirstScreen(t *testing.T) {
	s := MustStart(t)
	pages := patternPages(t, s)
	for _, page := range []string{"request-response", "event-driven", "work-queue", "async-messaging"} {
		if !strings.Contains(strings.Join(pages, " "), "/"+page) {
			t.Errorf("no tab for %s among %v", page, pages)
		}
	}
	for _, href := range pages {
		page := href[strings.LastIndex(href, "/")+1:]
		t.Run(page, func(t *testing.T) {
			ctx := browser(t)
			if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+href)); err != nil {
				t.Fatal(err)
			}
			waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
			waitJS(t, ctx, "counters shown", `document.querySelectorAll('#counters dd').length > 0`)
			waitJS(t, ctx, "log lines", `document.querySelectorAll('#log li').length > 3`)
			time.Sleep(time.Second) // frames enough for every node's badges
			checkLayout(t, ctx, page, "defaults")
			for _, st := range layoutStates[page] {
				st.set(t, ctx)
				time.Sleep(time.Second)
				checkLayout(t, ctx, page, st.name)
			}
			// The toast of the last action goes by; the picture is the page.
			if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('[data-testid="toast"]').hidden = true`, nil)); err != nil {
				t.Fatal(err)
			}
			if page != "compare" { // its picture is its own browser test's, docs/compare-outage.png
				shoot(t, ctx, filepath.Join("..", "docs", page+".png"))
			}
		})
	}
}

// patternPages are the pages the tabs lead to.
func patternPages(t *testing.T, s *server) []string {
	t.Helper()
	ctx := browser(t)
	var hrefs []string
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response"), chromedp.Evaluate(`[...document.querySelectorAll('.tabs a[href^="/labs/"]')].map((a) => a.getAttribute('href'))`, &hrefs)); err != nil {
		t.Fatal(err)
	}
	return hrefs
}

// checkLayout measures the page at each screen size and fails with every
// problem it finds, named by node id.
func checkLayout(t *testing.T, ctx context.Context, page, state string) {
	t.Helper()
	for _, sc := range layoutScreens {
		var problems []string
		if err := chromedp.Run(ctx,
			chromedp.EmulateViewport(sc.w, sc.h),
			chromedp.Evaluate(`window.scrollTo(0, 0)`, nil),
			chromedp.Sleep(300*time.Millisecond), // a frame or two at the new size
			chromedp.Evaluate(layoutJS, &problems)); err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s (%s) at %d×%d: %s", page, state, sc.w, sc.h, p)
		}
		if len(problems) > 0 {
			shot := filepath.Join(os.TempDir(), fmt.Sprintf("flowlab-layout-%s-%s-%dx%d.png", page, strings.NewReplacer(" ", "-", ",", "").Replace(state), sc.w, sc.h))
			shoot(t, ctx, shot)
			t.Logf("the page as measured: %s", shot)
		}
	}
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720)); err != nil {
		t.Fatal(err)
	}
}

// shoot saves the first screen, as a learner sees it without scrolling.
func shoot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// layoutJS returns every layout problem of the page as it is drawn:
//   - a node (its box, label, state, badges and note) not wholly inside the
//     diagram's SVG, where it would be clipped;
//   - two texts of different nodes or edges whose boxes share more than 4 px²;
//   - a label, state word, badge or edge label under the lane a mark
//     travels along an edge (the line's two lanes, 14 units either side,
//     widened by a mark's 11-unit radius), other than that edge's own label;
//   - badges, labels or state words smaller than 16 px on the screen;
//   - the ledger not wholly inside the first screen;
//   - an event-log line cut short whose title lacks its full text.
const layoutJS = `(() => {
  const problems = [];
  const svg = document.querySelector('#diagram');
  const view = svg.getBoundingClientRect();
  const fmt = (r) => '[' + [r.left, r.top, r.right, r.bottom].map((v) => Math.round(v)).join(',') + ']';
  const inside = (r, o, slack = 0.5) => r.left >= o.left - slack && r.top >= o.top - slack && r.right <= o.right + slack && r.bottom <= o.bottom + slack;
  const area = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) * Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  // What a text shows: its own characters, not its tooltip's.
  const words = (t) => [...t.childNodes].filter((c) => c.nodeName !== 'title').map((c) => c.textContent).join('').trim();
  const shown = (t) => words(t) !== '' && getComputedStyle(t).display !== 'none';

  // Texts, each with the node or edge it belongs to.
  const texts = [];
  for (const g of svg.querySelectorAll('.node')) {
    const id = g.dataset.node;
    const r = g.getBoundingClientRect();
    if (!inside(r, view)) problems.push('node ' + id + ' ' + fmt(r) + ' is clipped by the diagram ' + fmt(view));
    for (const part of ['label', 'state-tag', 'note']) {
      const t = g.querySelector(':scope > .' + part);
      if (t && shown(t)) texts.push({ owner: 'node ' + id, what: part, el: t });
    }
    const badges = g.querySelector(':scope > .badges');
    if (badges) {
      const spans = [...badges.querySelectorAll('tspan')].filter(shown);
      if (spans.length) for (const s of spans) texts.push({ owner: 'node ' + id, what: 'badge "' + s.textContent + '"', el: s, size: badges });
      else if (shown(badges)) texts.push({ owner: 'node ' + id, what: 'badges', el: badges });
    }
  }
  for (const t of svg.querySelectorAll('.edge-label')) {
    if (shown(t)) texts.push({ owner: 'edge ' + t.dataset.edge, what: 'label "' + t.textContent + '"', el: t });
  }
  for (const x of texts) {
    x.r = x.el.getBoundingClientRect();
    x.name = x.owner + ' ' + (x.what.startsWith('badge') || x.what.startsWith('label "') ? x.what : x.what + ' "' + words(x.el) + '"');
  }

  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i], b = texts[j];
      if (a.owner === b.owner) continue;
      const o = area(a.r, b.r);
      if (o > 4) problems.push(a.name + ' ' + fmt(a.r) + ' overlaps ' + b.name + ' ' + fmt(b.r) + ' by ' + Math.round(o) + ' px²');
    }
  }

  // The lanes marks travel: the edge line moved 14 units up and down.
  const m = svg.getScreenCTM();
  const toScreen = (x, y) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f];
  const under = new Set();
  for (const line of svg.querySelectorAll('line.edge')) {
    const [x1, y1, x2, y2] = ['x1', 'y1', 'x2', 'y2'].map((k) => Number(line.getAttribute(k)));
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    const nx = -(y2 - y1) / len, ny = (x2 - x1) / len;
    for (const lane of [-14, 14]) {
      const p = toScreen(x1 + nx * lane, y1 + ny * lane), q = toScreen(x2 + nx * lane, y2 + ny * lane);
      const r = 11 * m.a;
      const steps = Math.ceil(Math.hypot(q[0] - p[0], q[1] - p[1]) / 2);
      for (const x of texts) {
        if (x.what === 'note' || x.owner === 'edge ' + line.dataset.edge || under.has(x.name + line.dataset.edge)) continue;
        for (let k = 0; k <= steps; k++) {
          const px = p[0] + (q[0] - p[0]) * k / steps, py = p[1] + (q[1] - p[1]) * k / steps;
          if (px > x.r.left - r && px < x.r.right + r && py > x.r.top - r && py < x.r.bottom + r) {
            const dx = Math.max(x.r.left - px, 0, px - x.r.right), dy = Math.max(x.r.top - py, 0, py - x.r.bottom);
            if (Math.hypot(dx, dy) < r - 1) {
              problems.push(x.name + ' ' + fmt(x.r) + ' lies under the marks on edge ' + line.dataset.edge);
              under.add(x.name + line.dataset.edge);
              break;
            }
          }
        }
      }
    }
  }

  const small = new Set();
  for (const x of texts) {
    if (x.what === 'note' || small.has(x.owner)) continue;
    const px = parseFloat(getComputedStyle(x.size || x.el).fontSize) * m.a;
    if (px < 15.5) {
      problems.push(x.name + ' is drawn ' + px.toFixed(1) + ' px high, too small to read from the back of a room');
      small.add(x.owner);
    }
  }

  const ledger = document.querySelector('#ledger').getBoundingClientRect();
  const screen = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
  if (!inside(ledger, screen)) problems.push('the ledger ' + fmt(ledger) + ' is not on the first screen ' + fmt(screen));
  if (!inside(view, screen)) problems.push('the diagram ' + fmt(view) + ' is not wholly on the first screen ' + fmt(screen));

  for (const li of document.querySelectorAll('#log li')) {
    if (li.hidden || li.scrollWidth <= li.clientWidth) continue;
    if (!(li.title || '').includes(li.textContent)) {
      problems.push('the event-log line "' + li.textContent + '" is cut and its title "' + li.title + '" lacks its full text');
      break;
    }
  }
  return problems;
})()`
