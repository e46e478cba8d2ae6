package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	sandboxCounts  = flag.String("sandboxes", "10,50,100", "BenchmarkSandboxes: how many sandboxes, one server each, comma-separated")
	sandboxWarm    = flag.Duration("sandboxes.warmup", 10*time.Second, "BenchmarkSandboxes: time between the last sandbox set up and the measure")
	sandboxWindow  = flag.Duration("sandboxes.window", 20*time.Second, "BenchmarkSandboxes: how long the measure lasts")
	sandboxProfile = flag.String("sandboxes.profile", "", "BenchmarkSandboxes: a folder for a CPU profile of the window and a heap profile at its end, per count")
	sandboxBinary  = flag.String("sandboxes.bin", "", "BenchmarkSandboxes: a flowlab built with -tags pprof to measure instead of this tree, e.g. an older commit's")
	sandboxPattern = flag.String("sandboxes.pattern", "", "BenchmarkSandboxes: give every sandbox this one pattern (e.g. event-driven) instead of the four in turn")
)

// loadPatterns are the four patterns, given to the sandboxes in turn, each
// with its rate knob: a quarter of the sandboxes runs each.
var loadPatterns = []loadPattern{
	{"request-response", "rate"},
	{"event-driven", "order-service.rate"},
	{"work-queue", "order-service.rate"},
	{"async-messaging", "rate"},
}

type loadPattern struct{ name, rate string }

// loadRate is each sandbox's load: messages (calls, orders, order events)
// per second.
const loadRate = 20

// BenchmarkSandboxes measures what sandboxes cost the flowlab process. For
// each count N it builds flowlab, starts it as a process of its own against
// the real RabbitMQ and its embedded Kafka, waits for the default lab to stop
// for want of a browser, and measures that idle server (the baseline). Then
// it makes N sandboxes as a browser does (POST /labs from the page's origin,
// the owner cookie it gets, the page, its websocket), one pattern each in
// turn, sets each pattern's rate to 20 a second through the websocket as the
// page's control does, keeps reading every frame, and after a warm-up
// measures the process again: CPU over a window, RSS, goroutines, open fds,
// and the delay of each frame at its client (receive time minus the frame's
// time). Per-lab figures are the increase over the baseline divided by N.
// One op is one whole measure: run with -benchtime 1x.
func BenchmarkSandboxes(b *testing.B) {
	bin := *sandboxBinary
	if bin == "" {
		bin = buildFlowlab(b)
	}
	for _, f := range strings.Split(*sandboxCounts, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			b.Fatalf("-sandboxes %q: want counts like 10,50,100", *sandboxCounts)
		}
		b.Run(fmt.Sprintf("sandboxes=%d", n), func(b *testing.B) {
			for b.Loop() {
				measureSandboxes(b, bin, n)
			}
		})
	}
}

func measureSandboxes(b *testing.B, bin string, n int) {
	p := startFlowlab(b, bin, n+1)
	defer p.stop(b)
	waitUntil(b, time.Minute, "the default lab stopped for want of a browser", func() bool { return labsAt(b, p.url).Running == 0 })
	time.Sleep(2 * time.Second) // its connections close
	idle := p.measure(b, 5*time.Second)

	patterns := loadPatterns
	if *sandboxPattern != "" {
		i := slices.IndexFunc(loadPatterns, func(p loadPattern) bool { return p.name == *sandboxPattern })
		if i < 0 {
			b.Fatalf("-sandboxes.pattern %q: not one of the four patterns", *sandboxPattern)
		}
		patterns = loadPatterns[i : i+1]
	}
	clients := make([]*sandboxClient, n)
	start := time.Now()
	for i := range clients {
		pat := patterns[i%len(patterns)]
		c, err := openSandbox(p.url, pat.name)
		if err != nil {
			b.Fatalf("sandbox %d of %d: %v\n%s", i+1, n, err, p.stderr.tail())
		}
		defer c.close()
		if err := c.set(pat.rate, loadRate); err != nil {
			b.Fatalf("sandbox %d (%s): set %s: %v", i+1, pat.name, pat.rate, err)
		}
		go c.read()
		clients[i] = c
	}
	setup := time.Since(start)
	// A long warm-up is a steady-state run: its RSS each minute shows
	// whether it has levelled off.
	var curve []string
	for left := *sandboxWarm; left > 0; left -= time.Minute {
		time.Sleep(min(left, time.Minute))
		if left > time.Minute {
			curve = append(curve, fmt.Sprintf("%.0f", vmRSS(b, p.cmd.Process.Pid)/(1<<20)))
		}
	}
	if len(curve) > 0 {
		b.Logf("%d sandboxes: RSS MiB at each whole minute of the warm-up: %s", n, strings.Join(curve, ", "))
	}
	for _, c := range clients {
		c.record(true)
	}
	var prof *bytes.Buffer
	var profDone chan struct{}
	if *sandboxProfile != "" {
		prof, profDone = &bytes.Buffer{}, make(chan struct{})
		go func() {
			defer close(profDone)
			p.pprof(b, fmt.Sprintf("profile?seconds=%d", int(sandboxWindow.Seconds())), prof)
		}()
	}
	busy := p.measure(b, *sandboxWindow)
	var delays []float64
	frames := make([]int, n)
	byPattern, watchers := map[string]int{}, map[string]int{}
	resyncs := 0
	for i, c := range clients {
		d, r, ok := c.record(false)
		if !ok {
			b.Fatalf("sandbox %d (%s) lost its websocket: %v", i+1, c.pattern, c.err())
		}
		delays = append(delays, d...)
		frames[i] = len(d)
		byPattern[c.pattern] += len(d)
		watchers[c.pattern]++
		resyncs += r
	}
	if prof != nil {
		<-profDone
		heap := &bytes.Buffer{}
		p.pprof(b, "heap", heap)
		os.MkdirAll(*sandboxProfile, 0o755)
		os.WriteFile(filepath.Join(*sandboxProfile, fmt.Sprintf("cpu-%d.pprof", n)), prof.Bytes(), 0o644)
		os.WriteFile(filepath.Join(*sandboxProfile, fmt.Sprintf("heap-%d.pprof", n)), heap.Bytes(), 0o644)
	}
	slices.Sort(frames)
	if frames[0] == 0 {
		b.Fatalf("a sandbox's client got no frame in %v: its scenario is not running", *sandboxWindow)
	}
	slices.Sort(delays)
	perLab := func(after, before float64) float64 { return (after - before) / float64(n) }
	b.ReportMetric(busy.cores, "cores")
	b.ReportMetric(idle.cores, "idle-cores")
	b.ReportMetric(busy.rss/(1<<20), "rss-MiB")
	b.ReportMetric(idle.rss/(1<<20), "idle-rss-MiB")
	b.ReportMetric(perLab(busy.rss, idle.rss)/(1<<20), "rss-MiB/lab")
	b.ReportMetric(perLab(busy.goroutines, idle.goroutines), "goroutines/lab")
	b.ReportMetric(perLab(busy.fds, idle.fds), "fds/lab")
	b.ReportMetric(quantile(delays, 0.5), "frame-p50-ms")
	b.ReportMetric(quantile(delays, 0.99), "frame-p99-ms")
	b.ReportMetric(float64(frames[0])/sandboxWindow.Seconds(), "min-frames/s")
	for _, pat := range loadPatterns {
		// Frames a second at each client of the pattern: at most 10 (one
		// per 100 ms), fewer when nothing changed or the client resynced.
		if w := watchers[pat.name]; w > 0 {
			b.ReportMetric(float64(byPattern[pat.name])/float64(w)/sandboxWindow.Seconds(), "frames/s-"+pat.name)
		}
	}
	b.ReportMetric(float64(resyncs), "resyncs")
	b.ReportMetric(busy.beam, "rabbitmq-cores")
	b.ReportMetric(setup.Seconds()*1000/float64(n), "setup-ms/lab")
}

// sample is the flowlab process over a window.
type sample struct {
	cores      float64 // CPU seconds per wall second over the window
	rss        float64 // bytes, at the window's end
	goroutines float64 // at the window's end
	fds        float64 // open file descriptors, at the window's end
	beam       float64 // RabbitMQ's process (beam.smp) cores over the window, 0 if not found
}

// flowlabProc is flowlab running as a process of its own.
type flowlabProc struct {
	cmd      *exec.Cmd
	url      string // http://127.0.0.1:port
	pprofURL string
	stderr   *tailBuffer
}

// buildFlowlab builds the server with its pprof listener (see pprof.go).
func buildFlowlab(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "flowlab")
	out, err := exec.Command("go", "build", "-tags", "pprof", "-o", bin, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startFlowlab starts the binary on free ports, its default lab stopping
// after 2 s without a browser, so that the baseline is an idle server.
func startFlowlab(b *testing.B, bin string, maxLabs int) *flowlabProc {
	// Under the test binary's instance name, so that what a killed run
	// leaves on RabbitMQ is found and deleted by the next (TestMain).
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0",
		"-instance", testTag, "-lab", "bench", "-max-labs", strconv.Itoa(maxLabs), "-idle-stop", "2s",
		"-progress", filepath.Join(b.TempDir(), "progress.db"))
	cmd.Env = append(os.Environ(), "FLOWLAB_PPROF=127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	p := &flowlabProc{cmd: cmd, stderr: &tailBuffer{}}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	urls, pprofs := make(chan string, 1), make(chan string, 1)
	scan := func(r io.Reader, re *regexp.Regexp, found chan string, keep io.Writer) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
			fmt.Fprintln(keep, sc.Text())
		}
	}
	go scan(stdout, regexp.MustCompile(`open (http://\S+)`), urls, io.Discard)
	go scan(stderr, regexp.MustCompile(`^pprof on (http://\S+)`), pprofs, p.stderr)
	for p.url == "" || p.pprofURL == "" {
		select {
		case p.url = <-urls:
		case p.pprofURL = <-pprofs:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			b.Fatalf("flowlab did not start\n%s", p.stderr.tail())
		}
	}
	waitUntil(b, 30*time.Second, "healthz ok", func() bool {
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// stop ends flowlab as SIGINT does and waits for it.
func (p *flowlabProc) stop(b *testing.B) {
	p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("flowlab: %v\n%s", err, p.stderr.tail())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		b.Errorf("flowlab did not stop within 10 s\n%s", p.stderr.tail())
	}
}

// measure reads the process's CPU time (and RabbitMQ's) at both ends of
// window, and the rest at its end.
func (p *flowlabProc) measure(b *testing.B, window time.Duration) sample {
	pid := p.cmd.Process.Pid
	beam := findProcess("beam.smp")
	cpu0, beam0, t0 := cpuSeconds(pid), cpuSeconds(beam), time.Now()
	time.Sleep(window)
	cpu1, beam1, wall := cpuSeconds(pid), cpuSeconds(beam), time.Since(t0).Seconds()
	s := sample{cores: (cpu1 - cpu0) / wall, rss: vmRSS(b, pid), fds: float64(countFDs(b, pid))}
	if beam > 0 {
		s.beam = (beam1 - beam0) / wall
	}
	var out bytes.Buffer
	p.pprof(b, "goroutine?debug=1", &out)
	m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindSubmatch(out.Bytes())
	if m == nil {
		b.Fatalf("goroutine profile without a total: %.200s", out.Bytes())
	}
	s.goroutines, _ = strconv.ParseFloat(string(m[1]), 64)
	return s
}

func (p *flowlabProc) pprof(b *testing.B, path string, w io.Writer) {
	resp, err := http.Get(p.pprofURL + path)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(w, resp.Body)
}

// cpuSeconds is the user and system time of process pid, from
// /proc/<pid>/stat (in clock ticks of 1/100 s, as on every Linux Go runs on
// here); 0 for pid 0.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ")".
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

func vmRSS(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(raw)
	if m == nil {
		b.Fatal("no VmRSS in /proc/<pid>/status")
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb * 1024
}

func countFDs(b *testing.B, pid int) int {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		b.Fatal(err)
	}
	return len(fds)
}

// findProcess returns the pid of the process named comm, or 0.
func findProcess(comm string) int {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if name, err := os.ReadFile("/proc/" + p.Name() + "/comm"); err == nil && strings.TrimSpace(string(name)) == comm {
			return pid
		}
	}
	return 0
}

// quantile of sorted xs, by the nearest rank.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

// sandboxClient is a browser on a sandbox's page: it made the sandbox, so it
// holds the owner cookie, and it watches one pattern over the websocket.
type sandboxClient struct {
	lab, pattern string
	conn         *websocket.Conn

	mu        sync.Mutex
	recording bool
	delays    []float64 // ms, receive time minus each frame's time, while recording
	resyncs   int       // snapshots while recording
	readErr   error
}

// benchSandboxPath is where POST /labs sends the browser: the benchmark's
// server runs under the test binary's instance name, which prefixes the id.
var benchSandboxPath = regexp.MustCompile(`^/labs/((?:` + testTag + `-)?[a-z2-7]{8})/request-response$`)

// openSandbox does what a browser does on "New sandbox" and then on the
// pattern's tab: POST /labs from flowlab's own page, keep the cookie, load
// the page, open its websocket and read the first snapshot.
func openSandbox(base, pattern string) (*sandboxClient, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/labs", nil)
	req.Header.Set("Origin", base)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	m := benchSandboxPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil || len(resp.Cookies()) != 1 {
		return nil, fmt.Errorf("POST /labs: %s to %q with %d cookies", resp.Status, resp.Header.Get("Location"), len(resp.Cookies()))
	}
	c := &sandboxClient{lab: m[1], pattern: pattern}
	cookie := resp.Cookies()[0]
	page := base + "/labs/" + c.lab + "/" + pattern
	req, _ = http.NewRequest(http.MethodGet, page, nil)
	req.AddCookie(cookie)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", page, resp.Status)
	}
	h := http.Header{"Origin": {base}, "Cookie": {cookie.String()}}
	if c.conn, _, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(page, "http")+"/ws", h); err != nil {
		return nil, err
	}
	var snap struct{ Type string }
	c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := c.conn.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		c.conn.Close()
		return nil, fmt.Errorf("first message %q, %v; want a snapshot", snap.Type, err)
	}
	c.conn.SetReadDeadline(time.Time{})
	return c, nil
}

// set sends one knob command as the page's control does and waits for its
// reply; read must not be running yet.
func (c *sandboxClient) set(knob string, value int) error {
	cmd := fmt.Sprintf(`{"id":1,"op":"set","knob":%q,"value":%d}`, knob, value)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		return err
	}
	c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		var r reply
		if err := c.conn.ReadJSON(&r); err != nil {
			return err
		}
		if r.Type == "reply" {
			if !r.OK {
				return fmt.Errorf("refused: %s", r.Error)
			}
			return nil
		}
	}
}

// read reads every message until the connection closes, keeping the delay
// of each frame while recording.
func (c *sandboxClient) read() {
	for {
		_, msg, err := c.conn.ReadMessage()
		now := float64(time.Now().UnixMicro()) / 1000
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		var m struct {
			Type string
			Time int64
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		c.mu.Lock()
		switch {
		case !c.recording:
		case m.Type == "frame":
			c.delays = append(c.delays, now-float64(m.Time))
		case m.Type == "snapshot": // it fell behind: the hub resyncs it
			c.resyncs++
		}
		c.mu.Unlock()
	}
}

// record starts or stops recording; stopping returns the frame delays and
// the resyncs recorded, and whether the connection is still open.
func (c *sandboxClient) record(on bool) ([]float64, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recording = on
	d, r := c.delays, c.resyncs
	c.delays, c.resyncs = nil, 0
	return d, r, c.readErr == nil
}

func (c *sandboxClient) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

func (c *sandboxClient) close() { c.conn.Close() }

// tailBuffer keeps the last 8 KiB written to it, for an error message.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// waitUntil polls ok every 50 ms until it holds, failing after timeout.
func waitUntil(tb testing.TB, timeout time.Duration, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
