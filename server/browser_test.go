package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
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
	failOnPageErrors(t, ctx)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// failOnPageErrors fails the test, as it ends, for every uncaught exception,
// console.error and error log entry of any page it opened: a page that throws
// has dropped what it was drawing, even when it still looks right.
func failOnPageErrors(t *testing.T, ctx context.Context) {
	var mu sync.Mutex
	var errs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught " + ev.ExceptionDetails.Error()
			if ev.ExceptionDetails.URL != "" {
				msg += " in " + ev.ExceptionDetails.URL
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.APITypeError {
				return
			}
			msg = "console.error:"
			for _, a := range ev.Args {
				msg += " " + a.Description + string(a.Value)
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level != cdplog.LevelError {
				return
			}
			msg = "error logged: " + ev.Entry.Text + " " + ev.Entry.URL
		default:
			return
		}
		mu.Lock()
		errs = append(errs, msg)
		mu.Unlock()
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("the page: %s", e)
		}
	})
}

// Every page loads, goes live and applies frames without a single error in
// the browser, even while its lab is quiet.
func TestBrowserLoadsEveryPageWithoutErrors(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	for _, page := range []string{"request-response", "event-driven", "work-queue", "async-messaging"} {
		if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/"+page)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, page+" live", `document.querySelector('#conn.ok') !== null`)
		waitJS(t, ctx, page+" counters shown", `document.querySelectorAll('#counters dd').length > 0`)
		time.Sleep(time.Second) // several frames, the first of a quiet lab among them
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(os.TempDir(), "flowlab-load-"+page+".png"), png, 0o644)
	}
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
			var png []byte
			shot := filepath.Join(os.TempDir(), "flowlab-"+t.Name()+".png")
			if chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)) == nil && os.WriteFile(shot, png, 0o644) == nil {
				t.Logf("the page as it was: %s", shot)
			}
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
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
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
}

// With no RabbitMQ at AMQP_URL the RabbitMQ patterns say how to get one, and
// the other patterns carry on.
func TestBrowserSaysHowToGetAMissingRabbitMQ(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := l.Addr().String()
	l.Close() // a port where nothing answers
	s := MustStart(t, "-amqp-url", "amqp://guest:guest@"+nothing+"/")
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/event-driven")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "how to get RabbitMQ", `(() => { const n = document.querySelector('[data-testid="broker-note"]'); return !n.hidden && n.textContent.includes('apt-get install rabbitmq-server') && n.textContent.includes('`+nothing+`'); })()`)
	waitJS(t, ctx, "order-service shown unreachable", `document.querySelector('#diagram [data-node="order-service"].state-unreachable') !== null`)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/request-response")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "request-response still live", `document.querySelectorAll('#diagram .marks .m').length > 0 && document.querySelector('[data-testid="broker-note"]').hidden`)
}

// setKnob moves a knob's control in the page the way a learner does.
func setKnob(t *testing.T, ctx context.Context, name string, value any) {
	t.Helper()
	js := `(() => { const i = document.querySelector('[data-knob="` + name + `"] input, [data-knob="` + name + `"] select');
		if (i.type === 'checkbox') i.checked = ` + strconv.Quote(fmtValue(value)) + ` === 'true'; else i.value = ` + strconv.Quote(fmtValue(value)) + `;
		i.dispatchEvent(new Event('change')); })()`
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, nil)); err != nil {
		t.Fatal(err)
	}
}

func press(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Click(selector, chromedp.ByQuery)); err != nil {
		t.Fatalf("click %s: %v", selector, err)
	}
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// nodeFact is the JS for the value of a node's fact, read from the typed
// facts the diagram keeps in the node's data-facts, never from badge text;
// undefined if the node or the fact is absent.
func nodeFact(node, name string) string {
	return `(() => { const n = document.querySelector('#diagram [data-node="` + node + `"]');
		return n && n.dataset.facts ? JSON.parse(n.dataset.facts)['` + name + `'] : undefined; })()`
}

// Stopping a consumer of a durable queue lets its queue fill on the broker;
// restarting it drains the queue.
func TestBrowserStoppedConsumerQueueGrowsThenDrains(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/event-driven")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
	press(t, ctx, `[data-testid="preset-reliable"]`)
	waitJS(t, ctx, "durable queue", `document.querySelector('[data-knob="inventory.queue"] select').value === 'durable'`)
	setKnob(t, ctx, "order-service.rate", 20)
	waitJS(t, ctx, "inventory consuming", `document.querySelector('#diagram [data-node="inventory"].state-up') !== null`)
	press(t, ctx, `[data-knob="inventory.stop"] button`)
	waitJS(t, ctx, "inventory stopped", `document.querySelector('#diagram [data-node="inventory"].state-stopped') !== null`)
	waitJS(t, ctx, "queue depth growing", nodeFact("queue-inventory", "ready")+` >= 30`)
	setKnob(t, ctx, "order-service.rate", 2) // below what inventory can take, so its backlog drains
	press(t, ctx, `[data-knob="inventory.restart"] button`)
	waitJS(t, ctx, "queue drained", nodeFact("queue-inventory", "ready")+` === 0`)
	waitJS(t, ctx, "ledger balanced", `!document.querySelector('#ledger .unbalanced')`)
}

// Crashing a group member orphans its partitions until the session timeout;
// the rebalance is drawn with the assignment before and after, and lag rises
// then falls.
func TestBrowserCrashedMemberRebalances(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/async-messaging")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
	setKnob(t, ctx, "rate", 200)
	setKnob(t, ctx, "session-timeout", 4) // restarts the members: a rebalance
	waitJS(t, ctx, "session timeout set", `document.querySelector('[data-knob="session-timeout"] output').value.startsWith('4')`)
	settled := `document.querySelector('#diagram [data-node="inventory"].state-stable') !== null
		&& document.querySelectorAll('#diagram .node.kind-member.state-consuming').length === 3
		&& document.querySelector('#diagram .node.kind-partition:not(.state-behind):not(.state-caught-up)') === null`
	waitJS(t, ctx, "group settled", settled)
	time.Sleep(time.Second) // settled twice, a second apart: the restart's rebalance is over
	waitJS(t, ctx, "group still settled", settled)
	press(t, ctx, `[data-knob="m1-crash"] button`)
	waitJS(t, ctx, "m1 crashed", `document.querySelector('#diagram [data-node="m1"].state-crashed') !== null`)
	waitJS(t, ctx, "lag rising on an orphaned partition", `[...document.querySelectorAll('#diagram .node.kind-partition.state-orphaned')].some((n) => JSON.parse(n.dataset.facts || '{}').lag > 0)`)
	waitJS(t, ctx, "rebalance drawn", `(() => { const c = document.querySelector('[data-testid="callout"]'); return !c.hidden && c.textContent.includes('m1') && c.textContent.includes('after'); })()`)
	waitJS(t, ctx, "lag falling again", `document.querySelector('#diagram .node.kind-partition.state-orphaned') === null`)
}

// A burst too big to draw every message makes the page say that it draws
// one message in k, each whole, while the counters count every one; when
// the lab is quiet again it draws everything and says nothing.
func TestBrowserSaysWhenABusyLabDrawsASample(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/async-messaging")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
	setKnob(t, ctx, "rate", 0)
	for _, m := range []string{"m1", "m2", "m3"} {
		setKnob(t, ctx, m+"-processing", 0)
	}
	// Batched, a burst outruns what a view draws on any machine; flushed
	// record by record it may not.
	setKnob(t, ctx, "flush-each", false)
	waitJS(t, ctx, "group consuming", `document.querySelectorAll('#diagram .node.kind-member.state-consuming').length === 3`)
	waitJS(t, ctx, "the producer batching", `!/flush after every record|in progress|waiting/.test(document.querySelector('#diagram .node[data-node="order-service"]').textContent)`)
	for range 5 {
		press(t, ctx, `[data-knob="send-1000"] button`)
	}
	waitJS(t, ctx, "the page saying it draws a sample", `(() => { const n = document.querySelector('[data-testid="drawing"]'); return !n.hidden && /drawing 1 in \d+ messages/.test(n.textContent); })()`)
	screenshot(t, ctx, "busy-lab.png")
	waitJS(t, ctx, "every one processed", `(() => { const c = (n) => Number(document.querySelector('#counters dd[data-counter="' + n + '"]').textContent);
		return c('produced') >= 5000 && c('processed') === c('produced'); })()`)
	waitJS(t, ctx, "the note gone once the lab is quiet", `document.querySelector('[data-testid="drawing"]').hidden`)
}

// A knob changed in one browser shows at once in every other browser of the
// lab, with who changed it, on a RabbitMQ pattern too, whose scenario says
// nothing of its knobs by itself.
func TestBrowserShowsAKnobChangedInAnotherBrowser(t *testing.T) {
	s := MustStart(t)
	a := browser(t)
	if err := chromedp.Run(a); err != nil { // starts the browser
		t.Fatal(err)
	}
	b, cancel := chromedp.NewContext(a) // a second tab of the same browser
	t.Cleanup(cancel)
	failOnPageErrors(t, b)
	for _, tab := range []context.Context{a, b} {
		if err := chromedp.Run(tab, chromedp.Navigate(s.URL+s.base+"/work-queue")); err != nil {
			t.Fatal(err)
		}
		waitJS(t, tab, "live", `document.querySelector('#conn.ok') !== null`)
	}
	control := func(name string) string {
		return `document.querySelector('[data-knob="` + name + `"] input')`
	}
	setKnob(t, a, "emails.failure", 40)
	waitJS(t, b, "the other tab's slider moved", control("emails.failure")+`.value === '40' && document.querySelector('[data-knob="emails.failure"] output').value === '40 %'`)
	waitJS(t, b, "who changed it said", `(() => { const t = document.querySelector('[data-testid="toast"]'); return !t.hidden && t.textContent.includes('Sending fails changed by a browser'); })()`)

	press(t, b, `[data-testid="preset-flaky"]`)
	waitJS(t, a, "a preset from the other tab shown", control("emails.failure")+`.value === '50' && `+control("emails.max-attempts")+`.value === '3'`)
}

// Adding a worker draws its node, with its own knobs and its jobs done, and
// the jobs of a burst are shared: the workers' counts add up to the emails
// sent.
func TestBrowserAddedWorkerSharesTheJobs(t *testing.T) {
	s := MustStart(t)
	ctx := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(s.URL+s.base+"/work-queue")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live", `document.querySelector('#conn.ok') !== null`)
	press(t, ctx, `[data-knob="emails.add-worker"] button`)
	waitJS(t, ctx, "worker-4 drawn and up", nodeFact("worker-4", "done")+` >= 0 && `+nodeFact("worker-4", "up")+` === true`)
	waitJS(t, ctx, "worker-4's stop button", `document.querySelector('[data-knob="worker-4.stop"] button') !== null`)
	setKnob(t, ctx, "emails.failure", 0)
	press(t, ctx, `[data-knob="order-service.send-100"] button`)
	waitJS(t, ctx, "the jobs done add up to the emails sent", `(() => {
		const done = [`+nodeFact("worker-1", "done")+`, `+nodeFact("worker-2", "done")+`, `+nodeFact("worker-3", "done")+`, `+nodeFact("worker-4", "done")+`];
		const sent = Number(document.querySelector('dd[data-counter="acked"]').textContent);
		return sent >= 100 && done.reduce((a, b) => a + b, 0) === sent && done.filter((n) => n > 0).length >= 2;
	})()`)
}
