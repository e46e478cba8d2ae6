package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// walkJS reads the session as the page's panel got it, from the server.
const walkJS = `fetch('/labs/' + document.getElementById('app').dataset.lab + '/walk').then((r) => r.json())`

// panelStep is what the panel shows: its step and that step's kind and
// check status, from its data attributes.
func panelStep(t *testing.T, ctx context.Context) (step int, kind, status string) {
	t.Helper()
	var d map[string]string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`({...document.getElementById('walk').dataset})`, &d)); err != nil {
		t.Fatal(err)
	}
	step, _ = strconv.Atoi(d["step"])
	return step, d["kind"], d["status"]
}

func key(t *testing.T, ctx context.Context, k string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.KeyEvent(k)); err != nil {
		t.Fatal(err)
	}
}

// A learner opens the exclusive-vs-durable walkthrough from the pattern
// page, predicts with the keyboard, acts, sees the check pass, and reads an
// explanation quoting what their own lab measured beside their prediction;
// all on a 1280×720 projector, with the diagram still whole and readable.
// The picture of that is docs/walkthrough.png.
func TestBrowserWalkthroughPredictActCheckExplain(t *testing.T) {
	// Without an instance name, its sandbox's broker names are as long as
	// a learner's; stopping it tears the sandbox down.
	a, url := startServer(t, func(*App, string) {})
	origin := url[:strings.Index(url, "/labs/")]
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(origin+"/labs/"+a.home+"/event-driven")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page live", `document.querySelector('#conn.ok') !== null`)
	press(t, ctx, `[data-testid="walk-list"] summary`)
	startWalkByItsButton(t, ctx, "exclusive-vs-durable")
	waitJS(t, ctx, "its first step", `document.getElementById('walk').dataset.step === '0'`)
	var fresh string
	if err := chromedp.Run(ctx, chromedp.Text(`[data-testid="walk-fresh"]`, &fresh, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fresh, "fresh sandbox of yours") {
		t.Errorf("the panel says %q, not that it runs in a fresh sandbox", fresh)
	}
	var st struct {
		Lab   string `json:"lab"`
		Steps []struct {
			Kind      string   `json:"kind"`
			HTML      string   `json:"html"`
			Nodes     []string `json:"nodes"`
			Answer    string   `json:"answer"`
			Predicted string   `json:"predicted"`
			Measured  string   `json:"measured"`
			Correct   *bool    `json:"correct"`
			Status    string   `json:"status"`
		} `json:"steps"`
	}
	read := func() {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Evaluate(walkJS, &st, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if st.Lab == a.home {
		t.Fatal("the walk runs in the default lab, not a fresh sandbox")
	}

	// Keys typed into a field are the field's: the walk stays put.
	if err := chromedp.Run(ctx, chromedp.Focus(`#log-filter`, chromedp.ByQuery), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent("1"),
		chromedp.Sleep(700*time.Millisecond), chromedp.Blur(`#log-filter`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if step, _, _ := panelStep(t, ctx); step != 0 {
		t.Fatalf("→ typed into the log's filter moved the walk to step %d", step)
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const f = document.getElementById('log-filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`, nil)); err != nil {
		t.Fatal(err)
	}

	// Read → Predict, by the keyboard: → then 1.
	key(t, ctx, kb.ArrowRight)
	waitJS(t, ctx, "the predict step", `document.getElementById('walk').dataset.kind === 'predict'`)
	predict, _, _ := panelStep(t, ctx)
	read()
	for _, n := range st.Steps[predict].Nodes {
		waitJS(t, ctx, n+" highlighted", `document.querySelector('#diagram [data-node="`+n+`"][data-walk-focus]') !== null`)
	}
	key(t, ctx, "1")
	waitJS(t, ctx, "the answer locked", `(() => { const b = document.querySelectorAll('.walk-choices button'); return b.length > 1 && b[0].getAttribute('aria-pressed') === 'true' && [...b].every((x) => x.disabled); })()`)

	// Act: the button.
	key(t, ctx, kb.ArrowRight)
	waitJS(t, ctx, "the act step", `document.getElementById('walk').dataset.kind === 'act'`)
	press(t, ctx, `[data-testid="walk-act"]`)
	waitJS(t, ctx, "the button says it runs", `document.querySelector('[data-testid="walk-act"]').textContent === 'Running…'`)
	waitJS(t, ctx, "its commands finished", `!document.getElementById('walk').hasAttribute('data-running') && document.getElementById('walk-next').disabled === false`)

	// Check: waiting, then passed.
	key(t, ctx, kb.ArrowRight)
	waitJS(t, ctx, "the check step", `document.getElementById('walk').dataset.kind === 'check'`)
	waitJS(t, ctx, "the check passed", `document.querySelector('[data-testid="walk-status"][data-status="passed"]') !== null`)
	check, _, status := panelStep(t, ctx)
	if status != "passed" {
		t.Fatalf("the panel's status is %q", status)
	}

	// Explain: the learner's own numbers, and the prediction beside them.
	key(t, ctx, kb.ArrowRight)
	waitJS(t, ctx, "the explain step", `document.getElementById('walk').dataset.kind === 'explain'`)
	explain, _, _ := panelStep(t, ctx)
	read()
	p := st.Steps[predict]
	if st.Steps[check].Status != "passed" || p.Answer != "lost" || p.Correct == nil || !*p.Correct || p.Measured == "" {
		t.Fatalf("the session: check %q, prediction %q correct %v measured %q", st.Steps[check].Status, p.Answer, p.Correct, p.Measured)
	}
	// The measured text is "<lost> of inventory's copies lost, of <published> orders published".
	nums := regexp.MustCompile(`\d+`).FindAllString(p.Measured, -1)
	if len(nums) < 2 {
		t.Fatalf("the measured outcome %q quotes no numbers", p.Measured)
	}
	lost, _ := strconv.Atoi(nums[0])
	published, _ := strconv.Atoi(nums[1])
	if lost < 50 || published < lost {
		t.Fatalf("measured %d lost of %d published: the check asked for 50 lost at least", lost, published)
	}
	var shown struct {
		Explain, Predicted, Measured, Verdict string
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`({
		explain: document.querySelector('#walk-step .walk-body').textContent,
		predicted: document.querySelector('[data-testid="walk-score"] div:nth-child(1) p').textContent,
		measured: document.querySelector('[data-testid="walk-score"] div:nth-child(2) p').textContent,
		verdict: document.querySelector('[data-testid="walk-score"]').dataset.correct,
	})`, &shown)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown.Explain, nums[0]) || !strings.Contains(shown.Explain, nums[1]) {
		t.Errorf("the explanation %q does not quote the measured %d lost of %d published", shown.Explain, lost, published)
	}
	if shown.Predicted != p.Predicted || shown.Measured != p.Measured || shown.Verdict != "true" {
		t.Errorf("side by side the page shows %q | %q (%s), the session %q | %q", shown.Predicted, shown.Measured, shown.Verdict, p.Predicted, p.Measured)
	}
	if st.Steps[explain].HTML == "" {
		t.Error("the explain step has no text")
	}
	// The lab's own counters, from its websocket, hold at least what was quoted.
	if got := counter(t, ctx, "published"); got < published {
		t.Errorf("the page counts %d published, the explanation %d", got, published)
	}

	// ← goes back.
	key(t, ctx, kb.ArrowLeft)
	waitJS(t, ctx, "back on the check", `document.getElementById('walk').dataset.step === '`+strconv.Itoa(check)+`'`)
	key(t, ctx, kb.ArrowRight)
	waitJS(t, ctx, "the explain step again", `document.getElementById('walk').dataset.step === '`+strconv.Itoa(explain)+`'`)

	time.Sleep(time.Second) // frames enough for every node's badges
	checkLayout(t, ctx, "event-driven", "walkthrough, explain step")
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('[data-testid="toast"]').hidden = true`, nil)); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, filepath.Join("..", "docs", "walkthrough.png"))

	// Without the owner's cookie the page follows the walk and cannot move it.
	if err := chromedp.Run(ctx, network.ClearBrowserCookies(), chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the walk followed", `document.getElementById('walk').dataset.step === '`+strconv.Itoa(explain)+`'`)
	waitJS(t, ctx, "says watching", `/watching/.test(document.querySelector('[data-testid="walk-fresh"]').textContent)`)
	waitJS(t, ctx, "cannot move it", `document.getElementById('walk-back').disabled && document.getElementById('walk-next').disabled`)
	key(t, ctx, kb.ArrowLeft)
	time.Sleep(700 * time.Millisecond)
	if step, _, _ := panelStep(t, ctx); step != explain {
		t.Fatalf("a watcher's ← moved the walk to step %d", step)
	}
}

// On every pattern's page a walkthrough's panel leaves the diagram whole and
// readable, at 1280×720 and 1280×800, with Back and Next on the first
// screen: the first walk of each pattern, on its first step.
func TestLayoutFitsAWalkthroughOnEveryPattern(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	origin := url[:strings.Index(url, "/labs/")]
	seen := map[string]bool{}
	for _, w := range a.walkOrder {
		if seen[w.Pattern] {
			continue
		}
		seen[w.Pattern] = true
		t.Run(w.Pattern, func(t *testing.T) {
			ctx := browser(t)
			if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(origin+"/labs/"+a.home+"/"+w.Pattern)); err != nil {
				t.Fatal(err)
			}
			press(t, ctx, `[data-testid="walk-list"] summary`)
			startWalkByItsButton(t, ctx, w.ID)
			waitJS(t, ctx, "its first step", `document.getElementById('walk').dataset.step === '0'`)
			waitJS(t, ctx, "counters shown", `document.querySelectorAll('#counters dd').length > 0`)
			time.Sleep(time.Second) // frames enough for every node's badges
			checkLayout(t, ctx, w.Pattern, "walkthrough "+w.ID)
			var nav bool
			if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => { const r = document.getElementById('walk-next').getBoundingClientRect(); return r.bottom <= innerHeight && r.right <= innerWidth; })()`, &nav)); err != nil {
				t.Fatal(err)
			}
			if !nav {
				t.Errorf("%s: Next is not on the first screen", w.ID)
			}
		})
	}
	if len(seen) != 5 {
		t.Errorf("walkthroughs for %d patterns, want 5", len(seen))
	}
}

// startWalkByItsButton presses walk id's start button and waits for the
// page it leads to: a sandbox's page with the walk's panel, live.
func startWalkByItsButton(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	// Waiting by query, not by script: a script run while the form's
	// answer replaces the page would fail with it.
	if err := chromedp.Run(ctx, chromedp.Click(`[data-testid="start-walk-`+id+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#walk[data-walk="`+id+`"] #walk-step`, chromedp.ByQuery)); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	waitJS(t, ctx, "the walk's page", `/\/labs\/[^/]+\/[a-z-]+\?walk=`+id+`$/.test(location.href) && document.querySelector('#conn.ok') !== null`)
}

// A learner whose prediction was wrong sees it scored so; "Show me" does a
// do-it-yourself act for them; "Reset step" starts the pattern over and goes
// back to that act. The callee-down walkthrough, on request-response.
func TestBrowserWalkthroughShowMeAndResetStep(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	origin := url[:strings.Index(url, "/labs/")]
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(origin+"/labs/"+a.home+"/request-response")); err != nil {
		t.Fatal(err)
	}
	press(t, ctx, `[data-testid="walk-list"] summary`)
	startWalkByItsButton(t, ctx, "callee-down")
	next := func(kind string) int {
		t.Helper()
		waitJS(t, ctx, "Next allowed", `!document.getElementById('walk-next').disabled`)
		press(t, ctx, `#walk-next`)
		waitJS(t, ctx, "a "+kind+" step", `document.getElementById('walk').dataset.kind === '`+kind+`'`)
		step, _, _ := panelStep(t, ctx)
		return step
	}
	next("predict")
	press(t, ctx, `[data-testid="walk-choice-fine"]`) // wrong: its calls fail
	waitJS(t, ctx, "the answer locked", `document.querySelector('[data-testid="walk-choice-fine"]').getAttribute('aria-pressed') === 'true'`)
	next("act")
	press(t, ctx, `[data-testid="walk-act"]`)
	next("check")
	waitJS(t, ctx, "the check passed", `document.querySelector('[data-testid="walk-status"][data-status="passed"]') !== null`)
	waitJS(t, ctx, "the prediction scored wrong", `document.querySelector('[data-testid="walk-score"]').dataset.correct === 'false'`)
	next("explain")

	yourself := next("act")
	waitJS(t, ctx, "it asks the learner to act", `document.querySelector('.walk-yourself') !== null && document.getElementById('walk-next').disabled === false`)
	press(t, ctx, `[data-testid="walk-show"]`)
	waitJS(t, ctx, "shown", `!document.getElementById('walk').hasAttribute('data-running')`)
	waitJS(t, ctx, "product-service up again", `document.querySelector('#diagram [data-node="product-service"].state-down') === null`)
	check := next("check")
	waitJS(t, ctx, "the check passed", `document.querySelector('[data-testid="walk-status"][data-status="passed"]') !== null`)

	var st struct {
		Steps []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
		} `json:"steps"`
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(walkJS, &st, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if st.Steps[check].Status != "passed" {
		t.Fatalf("the session's check: %q", st.Steps[check].Status)
	}
	calls := counter(t, ctx, "calls")
	press(t, ctx, `[data-testid="walk-reset"]`)
	waitJS(t, ctx, "back at the act", `document.getElementById('walk').dataset.step === '`+strconv.Itoa(yourself)+`' && !document.getElementById('walk').hasAttribute('data-running')`)
	waitJS(t, ctx, "the pattern started over", `Number(document.querySelector('dd[data-counter="calls"]').textContent) < `+strconv.Itoa(calls))
}
