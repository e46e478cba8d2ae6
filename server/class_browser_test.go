package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A learner joins by code in a browser and lands on the class's walk in a
// sandbox of their own; their panel shows the instructor's pause, holds Next
// at the lock saying why, and follows the class to another walkthrough, in
// the same sandbox.
func TestBrowserLearnerFollowsTheClass(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), chromedp.Navigate(origin+"/join/"+strings.ToLower(code)),
		chromedp.SendKeys(`[data-testid="join-name"]`, "Ada", chromedp.ByQuery),
		chromedp.Click(`[data-testid="join-submit"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the class's walk", `location.pathname.endsWith('/event-driven') && document.getElementById('walk') !== null && document.getElementById('walk').dataset.step === '0'`)
	var lab string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById('app').dataset.lab`, &lab)); err != nil {
		t.Fatal(err)
	}
	if !joinedPath.MatchString("/labs/" + lab + "/event-driven?walk=exclusive-vs-durable") {
		t.Fatalf("joined lab %q", lab)
	}
	if status, out := teacher.pace(code, `{"op":"pause"}`); status != 200 {
		t.Fatalf("pause: %d %v", status, out)
	}
	waitJS(t, ctx, "the paused banner", `!document.querySelector('[data-testid="walk-paused"]').hidden`)
	teacher.pace(code, `{"op":"resume"}`)
	waitJS(t, ctx, "the banner gone", `document.querySelector('[data-testid="walk-paused"]').hidden`)

	teacher.pace(code, `{"op":"lock","step":0}`)
	waitJS(t, ctx, "Next held at the lock", `document.getElementById('walk-next').disabled &&
		document.querySelector('[data-testid="walk-lock"]').textContent === 'Your instructor has not opened step 2 yet.'`)
	teacher.pace(code, `{"op":"lock","step":-1}`)
	waitJS(t, ctx, "Next open again", `!document.getElementById('walk-next').disabled && document.querySelector('[data-testid="walk-lock"]').hidden`)

	teacher.pace(code, `{"op":"walk","walk":"no-timeout"}`)
	waitJS(t, ctx, "the class's new walk, same sandbox", `location.pathname === '/labs/`+lab+`/request-response' &&
		new URLSearchParams(location.search).get('walk') === 'no-timeout' && document.getElementById('walk') !== null &&
		document.getElementById('walk').dataset.step === '0'`)
}
