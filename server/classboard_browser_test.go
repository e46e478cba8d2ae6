package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// learnerBrowser is another browser context of the instructor's browser:
// cookies of its own, as a learner's laptop has, its page errors failing the
// test as the instructor's do. Its tab is made in a window of its own:
// headless chromium refuses a new context's tab without one ("no browser is
// open"), which chromedp.WithNewBrowserContext asks for.
func learnerBrowser(t *testing.T, instructor context.Context) context.Context {
	t.Helper()
	browser := cdp.WithExecutor(instructor, chromedp.FromContext(instructor).Browser)
	id, err := target.CreateBrowserContext().WithDisposeOnDetach(true).Do(browser)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := target.CreateTarget("about:blank").WithBrowserContextID(id).WithNewWindow(true).Do(browser)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(instructor, chromedp.WithTargetID(tab))
	t.Cleanup(cancel)
	failOnPageErrors(t, ctx)
	return ctx
}

// firstSeen installs, in the page, a watcher that notes the wall-clock time
// (Date.now(), the same clock in every context of one machine) at which cond
// first holds, checked on every change of the page; seenAt reads it.
func firstSeen(t *testing.T, ctx context.Context, name, cond string) {
	t.Helper()
	js := `(() => { const f = () => { if (window['` + name + `'] === undefined && (` + cond + `)) window['` + name + `'] = Date.now(); };
		new MutationObserver(f).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true }); f(); })()`
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, nil)); err != nil {
		t.Fatal(err)
	}
}

func seenAt(t *testing.T, ctx context.Context, name string) int64 {
	t.Helper()
	var ms int64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`window['`+name+`']`, &ms)); err != nil {
		t.Fatal(err)
	}
	return ms
}

// A class as a room runs it, in three browser contexts: the instructor
// starts a class from their link, two learners join by its code, the board
// shows both; the instructor moves everyone to a step and both learners'
// panels follow; their predictions show as a histogram; the act fires in
// both sandboxes at once, one learner's check passes and the board shows it
// within a second of her session. The board at 1280×720 is docs/class-board.png.
func TestBrowserClassBoardFollowsTwoLearners(t *testing.T) {
	const teachKey = "board-test-key-0123456789"
	start := time.Now()
	// An instance name of its own, so that TestMain deletes what the learners'
	// sandboxes leave if this binary is killed.
	s := MustStart(t, "-teach-key", teachKey, "-instance", testTag+"v")
	t.Cleanup(func() { // what the server did, for a failure on a loaded machine
		if t.Failed() {
			t.Logf("flowlab's log:\n%s", s.stderr)
		}
	})
	teacher := browser(t)
	if err := chromedp.Run(teacher, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(s.URL+"/teach?key="+teachKey)); err != nil {
		t.Fatal(err)
	}
	// callee-down: its act (product-service down) and check (calls failing)
	// need no broker and take a second, however loaded the machine.
	waitJS(t, teacher, "the instructor's page, the key gone from its address", `location.pathname === '/teach' && location.search === '' && document.querySelector('[data-testid="new-class"]') !== null`)
	press(t, teacher, `[data-testid="class-walk-callee-down"]`)
	press(t, teacher, `[data-testid="start-class"]`)
	waitJS(t, teacher, "the board, live", `location.pathname.endsWith('/board') && document.querySelector('#board-conn.ok') !== null && document.getElementById('pace-step-n').options.length > 0`)
	var code, joinURL string
	if err := chromedp.Run(teacher, chromedp.Evaluate(`document.getElementById('board').dataset.code`, &code),
		chromedp.Text(`[data-testid="join-url"]`, &joinURL, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(joinURL, "/join/"+code) {
		t.Errorf("the board's join URL %q does not end in /join/%s", joinURL, code)
	}
	waitJS(t, teacher, "the QR code drawn", `(() => { const q = document.querySelector('[data-testid="join-qr"]'); return q.complete && q.naturalWidth >= 512; })()`)
	var codeFont float64
	if err := chromedp.Run(teacher, chromedp.Evaluate(`parseFloat(getComputedStyle(document.querySelector('[data-testid="join-code"]')).fontSize)`, &codeFont)); err != nil {
		t.Fatal(err)
	}
	if codeFont < 72 {
		t.Errorf("the join code is %.0f px: too small for the back of a room", codeFont)
	}
	projected(t, teacher, "class-join.png")

	// Two learners join by the code, typed as a learner types it.
	learners := []struct {
		name string
		ctx  context.Context
	}{{"Ada", learnerBrowser(t, teacher)}, {"Grace", learnerBrowser(t, teacher)}}
	for _, l := range learners {
		if err := chromedp.Run(l.ctx, chromedp.Navigate(s.URL+"/join"),
			chromedp.SendKeys(`input[name="code"]`, " "+strings.ToLower(code)+" ", chromedp.ByQuery),
			chromedp.SendKeys(`input[name="name"]`, l.name, chromedp.ByQuery),
			chromedp.Submit(`input[name="name"]`, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range learners {
		waitJS(t, l.ctx, l.name+": their sandbox's page on the class's walk", `document.querySelector('#conn.ok') !== null && document.getElementById('walk').dataset.step === '0'`)
	}
	t.Logf("both learners in their sandboxes after %v", time.Since(start).Round(time.Millisecond))
	waitJS(t, teacher, "both on the board", `[...document.querySelectorAll('#learners tr')].map((r) => r.dataset.name).join() === 'Ada,Grace'`)
	var spot string
	if err := chromedp.Run(teacher, chromedp.Evaluate(`document.querySelector('#learners tr[data-name="Ada"] .spot a').getAttribute('href')`, &spot)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(spot, "/labs/") || !strings.HasSuffix(spot, "/request-response?present=1&spotlight=Ada") {
		t.Errorf("Ada's spotlight link is %q", spot)
	}

	// Everyone to the predict step: both panels follow; each answers.
	move := func(step int) {
		t.Helper()
		if err := chromedp.Run(teacher, chromedp.SetValue(`#pace-step-n`, strconv.Itoa(step), chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		press(t, teacher, `[data-testid="pace-move"]`)
		waitJS(t, teacher, "the board: the class on step "+strconv.Itoa(step), `(() => {
			const e = document.getElementById('pace-error');
			if (!e.hidden) throw new Error(e.textContent);
			return document.getElementById('pace-state').textContent.startsWith('The class is on step `+strconv.Itoa(step+1)+`.');
		})()`)
		for _, l := range learners {
			waitJS(t, l.ctx, l.name+"'s panel on step "+strconv.Itoa(step), `document.getElementById('walk').dataset.step === '`+strconv.Itoa(step)+`'`)
		}
	}
	move(1)
	key(t, learners[0].ctx, "1")
	key(t, learners[1].ctx, "2")
	waitJS(t, teacher, "the histogram: one answer each", `document.querySelectorAll('#predict li[data-count="1"]').length === 2`)

	// The act, fired by the instructor in both sandboxes at once.
	move(2)
	waitJS(t, teacher, "the fire button enabled on an act step", `!document.querySelector('[data-testid="pace-fire"]').disabled`)
	press(t, teacher, `[data-testid="pace-fire"]`)
	for _, l := range learners {
		waitJS(t, l.ctx, l.name+": the act ran in their sandbox", `((document.querySelector('[data-testid="walk-act"]') || {}).textContent || '').startsWith('Done')`)
	}

	// Ada goes on to the check. The board shows it passed within a second
	// of the server: beside the board, the instructor's page reads Ada's
	// session every 50 ms and notes when it first says passed (one page
	// times both, so a loaded machine slows both alike).
	ada := learners[0].ctx
	firstSeen(t, teacher, "boardSaw", `(document.querySelector('#learners tr[data-name="Ada"]') || {dataset: {}}).dataset.passed === '1'`)
	if err := chromedp.Run(teacher, chromedp.Evaluate(`(async () => {
		const lab = new URL(document.querySelector('#learners tr[data-name="Ada"] .spot a').href).pathname.split('/')[2];
		while (window.serverSaw === undefined) {
			const st = await (await fetch('/labs/' + lab + '/walk', { cache: 'no-store' })).json();
			if (st.steps.some((s) => s.kind === 'check' && s.status === 'passed')) window.serverSaw = Date.now();
			else await new Promise((ok) => setTimeout(ok, 50));
		}
	})(), true`, nil)); err != nil {
		t.Fatal(err)
	}
	key(t, ada, kb.ArrowRight)
	waitJS(t, ada, "the check step", `document.getElementById('walk').dataset.kind === 'check'`)
	waitJS(t, ada, "Ada's page: her check passed", `document.querySelector('[data-testid="walk-status"][data-status="passed"]') !== null`)
	waitJS(t, teacher, "the board shows Ada's check passed", `window.boardSaw !== undefined && window.serverSaw !== undefined`)
	lag := seenAt(t, teacher, "boardSaw") - seenAt(t, teacher, "serverSaw")
	t.Logf("the board showed Ada's passed check %d ms after her session said so", lag)
	if lag > 1000 {
		t.Errorf("the board showed the check %d ms after Ada's session: want within 1 s", lag)
	}
	waitJS(t, teacher, "the measured outcome marked", `document.querySelector('#predict li.measured[data-choice="fail"]') !== null`)

	// The export has both learners.
	var csv string
	if err := chromedp.Run(teacher, chromedp.Evaluate(`fetch(document.querySelector('[data-testid="board-csv"]').href).then((r) => r.text())`, &csv,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv, "\nAda,") || !strings.Contains(csv, "\nGrace,") {
		t.Errorf("the CSV export:\n%s", csv)
	}

	press(t, teacher, `[data-testid="join-fold"]`)
	waitJS(t, teacher, "the join code folded away", `document.getElementById('join').hidden && !document.getElementById('join-show').hidden`)
	projected(t, teacher, "class-board.png")
	t.Logf("the whole class in %v", time.Since(start).Round(time.Millisecond))
}

// projected saves what a 1280×720 projector shows of the page to docs/.
func projected(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
