package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// joinWindow is how long a room of learners takes to join, in the
// benchmark: each starts at an even share of it.
const joinWindow = 10 * time.Second

// BenchmarkClassJoin has 30 and then 100 simulated learners join a class
// within 10 s, each from a loopback address of its own (as each laptop
// comes from its own), against a real flowlab on the real RabbitMQ: a join
// is POST /join until the page it redirects to has answered. The baseline,
// in the same run, is as many "New sandbox" presses (POST /labs, then its
// page) at the same pace, on a flowlab of its own. It reports the p50, p99
// and slowest of each, the p99 as a ratio of the baseline's, and fails on
// any join that does not land on its page. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkClassJoin -benchtime 1x ./server/
func BenchmarkClassJoin(b *testing.B) {
	for _, n := range []int{30, 100} {
		var base []time.Duration
		b.Run(fmt.Sprintf("sandboxes=%d", n), func(b *testing.B) {
			for range b.N {
				base = paced(b, n, newSandboxAs)
			}
			reportLatency(b, base, nil)
		})
		b.Run(fmt.Sprintf("joins=%d", n), func(b *testing.B) {
			var joins []time.Duration
			for range b.N {
				joins = paced(b, n, nil)
			}
			reportLatency(b, joins, base)
		})
	}
}

// paced runs n learners on a fresh flowlab, one every joinWindow/n, each
// doing one (a join when nil), and returns how long each took, sorted.
func paced(b *testing.B, n int, one func(b *testing.B, c *http.Client, origin, code, name string) error) []time.Duration {
	b.StopTimer()
	// No simulated learner opens its page's websocket: their patterns stop
	// their load a second after their page answered, so that what is
	// measured is the joins, not n patterns' load on two shared cores.
	s := runClassServer(b, filepath.Join(b.TempDir(), "progress.db"), "-max-labs", fmt.Sprint(n+10), "-idle-stop", "1s")
	defer s.stop()
	code := ""
	if one == nil {
		code = instructorOf(b, s.a, s.origin).newClass("exclusive-vs-durable")
		one = joinAs
	}
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(joinWindow * time.Duration(i) / time.Duration(n))))
			c := fromAddr(fmt.Sprintf("127.0.2.%d", i+1))
			t0 := time.Now()
			errs[i] = one(b, c, s.origin, code, fmt.Sprintf("Learner %d", i+1))
			took[i] = time.Since(t0)
			c.CloseIdleConnections()
		}()
	}
	wg.Wait()
	b.ReportMetric(time.Since(start).Seconds(), "all-done-s")
	b.StopTimer()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("learner %d of %d: %v", i+1, n, err)
		}
	}
	slices.Sort(took)
	return took
}

// joinAs joins class code as name, then opens the page it is sent to.
func joinAs(_ *testing.B, c *http.Client, origin, code, name string) error {
	v := url.Values{"code": {code}, "name": {name}}
	req, _ := http.NewRequest(http.MethodPost, origin+"/join", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	return followOnce(c, req, origin)
}

// newSandboxAs presses "New sandbox", then opens the page it is sent to.
func newSandboxAs(_ *testing.B, c *http.Client, origin, _, _ string) error {
	req, _ := http.NewRequest(http.MethodPost, origin+"/labs", nil)
	req.Header.Set("Origin", origin)
	return followOnce(c, req, origin)
}

// followOnce sends req, wants a 303, and GETs where it points with the
// cookies it was given, as a browser does.
func followOnce(c *http.Client, req *http.Request, origin string) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/labs/") {
		return fmt.Errorf("%s %s: %d to %q: %.300s", req.Method, req.URL.Path, resp.StatusCode, loc, body)
	}
	page, _ := http.NewRequest(http.MethodGet, origin+loc, nil)
	for _, ck := range resp.Cookies() {
		page.AddCookie(ck)
	}
	resp, err = c.Do(page)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", loc, resp.StatusCode)
	}
	return nil
}

// reportLatency reports p50, p99 and the slowest of sorted; with a baseline,
// the p99 as a ratio of its p99.
func reportLatency(b *testing.B, sorted, base []time.Duration) {
	if len(sorted) == 0 {
		return
	}
	b.ReportMetric(ms(durQuantile(sorted, 0.50)), "p50-ms")
	b.ReportMetric(ms(durQuantile(sorted, 0.99)), "p99-ms")
	b.ReportMetric(ms(sorted[len(sorted)-1]), "max-ms")
	if len(base) > 0 {
		b.ReportMetric(float64(durQuantile(sorted, 0.99))/float64(durQuantile(base, 0.99)), "p99/sandbox-p99")
	}
}

// durQuantile is the nearest-rank q-quantile of sorted.
func durQuantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
