package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	progressdb "flowlab/server/progress"
)

// On a 1280×720 projector the lessons still fill the first screen, the
// walkthroughs' heading shows at its foot, and below it each walkthrough
// reads in large type with this browser's learner's tick and steps done.
func TestBrowserStartPageShowsTheLearnersWalkthroughs(t *testing.T) {
	s := startProgressServer(t, filepath.Join(t.TempDir(), "progress.db"))
	me := progressdb.NewLearner()
	for _, step := range []int{0, 1, 2} {
		if err := s.app.learners.Record(me, "lost-while-away", func(w *progressdb.Walk) error { return w.MarkDone(step) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.app.learners.Record(me, "replay", func(w *progressdb.Walk) error { w.MarkFinished(time.Now()); return w.MarkDone(3) }); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	setCookie := chromedp.ActionFunc(func(ctx context.Context) error {
		return network.SetCookie(learnerCookie, me).WithURL(s.url).WithHTTPOnly(true).Do(ctx)
	})
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 720), setCookie, chromedp.Navigate(s.url+"/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "start page drawn", `document.querySelector('[data-testid="walks"]') !== null`)
	var first struct {
		Below   int
		Heading float64
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => ({
		below: [...document.querySelectorAll('.start-pattern li')].filter((li) => li.getBoundingClientRect().bottom > innerHeight).length,
		heading: document.querySelector('#walks-title').getBoundingClientRect().bottom }))()`, &first)); err != nil {
		t.Fatal(err)
	}
	if first.Below != 0 || first.Heading > 720 {
		t.Errorf("first screen: %d lessons below it, walkthroughs' heading ends at %.0f px (want every lesson and the heading within 720)", first.Below, first.Heading)
	}
	var walks struct {
		Tick, Progress, Fresh string
		Font                  float64
		InView                bool
	}
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(() => {
		const item = (id) => document.querySelector('[data-testid="walk-' + id + '"]');
		item('replay').scrollIntoView({block: 'center'});
		const r = item('replay').getBoundingClientRect();
		return { tick: document.querySelector('[data-testid="tick-replay"]').innerText.trim(),
			progress: document.querySelector('[data-testid="progress-lost-while-away"]').innerText,
			fresh: item('no-timeout').innerText,
			font: Math.min(...[...document.querySelectorAll('.walk-item')].map((li) => parseFloat(getComputedStyle(li).fontSize))),
			inView: r.top >= 0 && r.bottom <= innerHeight };
	})()`, &walks)); err != nil {
		t.Fatal(err)
	}
	if walks.Tick != "✓" || walks.Progress != "· 3 of 7 steps" || !walks.InView || walks.Font < 18 {
		t.Errorf("walkthroughs: %+v; want replay ticked in view, lost-while-away at 3 of 7 steps, type 18 px at least", walks)
	}
	if !strings.Contains(walks.Fresh, "No timeout") || strings.Contains(walks.Fresh, "steps") || strings.Contains(walks.Fresh, "✓") {
		t.Errorf("the walk not started reads %q, want its title and no progress", walks.Fresh)
	}
}
