package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser opens Debian's chromium headless with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: scripts/test.sh installs it (apt-get install chromium)")
	}
	// Not t.TempDir: chromium may still be writing its profile as the test
	// ends, and a failed clean-up must not fail the test.
	profile, err := os.MkdirTemp("", "flowlab-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1600, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// This chromedp predates some events of Debian's newer chromium; it
	// reports them as errors that mean nothing to these tests.
	quiet := func(format string, args ...any) {
		if !strings.HasPrefix(format, "unhandled") {
			t.Logf(format, args...)
		}
	}
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(quiet))
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// waitJS polls a JavaScript condition until it holds, and reports how long
// that took.
func waitJS(t *testing.T, ctx context.Context, what, cond string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(cond, &ok)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%s: not seen within 15 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func counter(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	var v int
	js := `Number((document.querySelector('dd[data-counter="` + name + `"]')||{}).textContent||-1)`
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &v)); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBrowserShowsTrafficAndProductServiceGoingDown(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+"/")); err != nil {
		t.Fatal(err)
	}
	d := waitJS(t, ctx, "live traffic drawn", `document.querySelector('#conn.ok') !== null && document.querySelectorAll('#diagram .marks .m').length > 0`)
	t.Logf("traffic drawn %v after load", d)
	waitJS(t, ctx, "counters shown", `Number((document.querySelector('dd[data-counter="calls"]')||{}).textContent) > 0`)
	refused := counter(t, ctx, "refused")

	if err := chromedp.Run(ctx, chromedp.Click(`[data-testid="switch-product-service"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	d = waitJS(t, ctx, "failures drawn", `document.querySelector('#diagram [data-node="product-service"].state-down') !== null && document.querySelectorAll('#diagram .marks .m.error').length > 0`)
	t.Logf("failures drawn %v after the click", d)
	waitJS(t, ctx, "refused counter moving", `Number(document.querySelector('dd[data-counter="refused"]').textContent) > `+strconv.Itoa(refused+3))
	var button string
	chromedp.Run(ctx, chromedp.Text(`[data-testid="switch-product-service"]`, &button, chromedp.ByQuery))
	if !strings.Contains(button, "back up") {
		t.Errorf("switch says %q after taking the service down", button)
	}

	// A refused change is explained in the page and changes nothing.
	var before string
	chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('#v-latency_ms').value`, &before))
	chromedp.Run(ctx, chromedp.Evaluate(`(() => { const i = document.querySelector('#k-latency_ms'); i.max = 99999; i.value = 99999; i.dispatchEvent(new Event('change')); })()`, nil))
	waitJS(t, ctx, "error shown", `(() => { const t = document.querySelector('[data-testid="toast"]'); return !t.hidden && t.textContent.includes('5000'); })()`)
	waitJS(t, ctx, "value snapped back", `document.querySelector('#v-latency_ms').value === `+strconv.Quote(before))

	// Clicking a line of the log shows that message's hops.
	chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('[data-testid="toast"]').hidden = true`, nil))
	chromedp.Run(ctx, chromedp.Click(`#log li[data-msg]`, chromedp.ByQuery))
	waitJS(t, ctx, "trace shown", `document.querySelector('#trace').open && document.querySelectorAll('#trace-body tbody tr').length > 0`)
	chromedp.Run(ctx, chromedp.Evaluate(`document.querySelector('#trace').close()`, nil))

	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join("..", "docs", "request-response.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
