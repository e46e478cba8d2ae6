package hub_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/server/hub"
)

// The fan-out benchmark: how many browsers, how fast a scenario emits (paced,
// events per second in total), and how long to wait for the last delivery or
// a clean shutdown before giving up. 500 events/s is a busy scenario: the
// request-response one at its top load of 200 calls/s emits about 600. The
// bare broadcast needs both cores of a 2-core machine at 1000 events/s, and
// falls behind at 2000; the flags explore such loads.
var (
	fanoutClients = flag.Int("fanout.clients", 200, "websocket clients in BenchmarkFanout")
	fanoutRate    = flag.Int("fanout.rate", 500, "events per second BenchmarkFanout emits, in total")
)

const fanoutWait = 20 * time.Second

// bareQueue is how many messages a bare client may have waiting: as much time
// as the hub's default queue holds, 16 frames of 100 ms.
func bareQueue() int { return *fanoutRate * 16 / 10 }

// fanoutUpgrader has the buffer sizes of the server's own upgrader.
var fanoutUpgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 16384}

// BenchmarkFanout sends the same paced request-response hops to 200 websocket
// clients over loopback two ways: through the hub, which encodes one frame per
// interval for everyone (send=batched), and as a plain gorilla/websocket
// broadcast that encodes each event once and writes it to every client as a
// message of its own (send=bare, the baseline). One op is one event emitted;
// it counts as delivered once every client has decoded it. Compare the two in
// one run (about 7 s; docs/BENCHMARKS.md has the repeated form for benchstat):
//
//	go test -run '^$' -bench Fanout -benchtime 1000x ./server/hub
//
// ns/op is only the emission pace (1/fanoutRate); the figures are
// events/cpu-s (events delivered to all clients per second of process CPU,
// the clients' own reading and decoding included), p50-ms and p99-ms (emit to
// decoded by a client) and cores (CPU time over wall time).
func BenchmarkFanout(b *testing.B) {
	b.Run("send=bare", func(b *testing.B) { benchFanout(b, startBare) })
	b.Run("send=batched", func(b *testing.B) { benchFanout(b, startBatched) })
}

// fanout is one way of sending a scenario's events to browsers.
type fanout struct {
	url     string
	sink    flow.Sink
	clients func() int                        // connected, as the server sees them
	decode  func(v *viewer, msg []byte) error // what a browser does with one message
	stop    func() error                      // disconnects everyone and waits for the server's goroutines
}

func benchFanout(b *testing.B, start func() *fanout) {
	ignore := goleak.IgnoreCurrent()
	f := start()
	lab, err := flow.NewLab("bench")
	if err != nil {
		b.Fatal(err)
	}
	em := flow.NewEmitter(lab, "request-response", f.sink)

	viewers := make([]*viewer, 0, *fanoutClients)
	var reading sync.WaitGroup
	defer func() {
		if err := f.stop(); err != nil {
			b.Error(err)
		}
		if !waitTimeout(&reading, fanoutWait) {
			b.Error("clients still reading after the server stopped")
		}
		if err := goleak.Find(ignore); err != nil {
			b.Errorf("goroutines left after the benchmark: %v", err)
		}
	}()
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for range *fanoutClients {
		conn, _, err := dialer.Dial(f.url, nil)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		v := &viewer{conn: conn, decode: f.decode, want: b.N,
			lat: make([]time.Duration, 0, b.N), full: make(chan struct{})}
		viewers = append(viewers, v)
		reading.Go(v.read)
	}
	for deadline := time.Now().Add(fanoutWait); f.clients() != *fanoutClients; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("server has %d clients, want %d", f.clients(), *fanoutClients)
		}
	}

	runtime.GC() // the setup's garbage is not the benchmark's
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	emitPaced(em, b.N)
	timeout := time.After(fanoutWait)
	for i, v := range viewers {
		select {
		case <-v.full:
		case <-timeout:
			b.Fatalf("client %d got %d of %d events (%s) after %v", i, v.count(), b.N, v.status(), fanoutWait)
		}
	}
	cpu, wall := cpuTime()-cpu0, time.Since(began)
	b.StopTimer()

	var lat []time.Duration
	for _, v := range viewers {
		lat = append(lat, v.lat...)
	}
	slices.Sort(lat)
	delivered := float64(b.N * *fanoutClients)
	b.ReportMetric(delivered/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
}

// emitPaced emits n events at fanoutRate, alternating the request and the
// response of one call from order-service to product-service. It keeps to an
// absolute schedule, so a late wake-up is made up at once.
func emitPaced(em *flow.Emitter, n int) {
	period := time.Second / time.Duration(*fanoutRate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * period)); d > 0 {
			time.Sleep(d)
		}
		id := "order-" + strconv.Itoa(i/2)
		if i%2 == 0 {
			em.Emit(flow.Event{Kind: flow.KindRequest, From: "order-service", To: "product-service",
				MsgID: id, Attempt: 1, Detail: flow.Detail{Payload: "GET /products/" + strconv.Itoa(i%97)}})
		} else {
			em.Emit(flow.Event{Kind: flow.KindResponse, From: "product-service", To: "order-service",
				MsgID: id, Attempt: 1, Detail: flow.Detail{Status: http.StatusOK, LatencyMS: 3.7, Outcome: "ok"}})
		}
	}
}

// viewer is one browser: it reads and decodes every message, and for every
// event in it notes how long ago the event was emitted.
type viewer struct {
	conn   *websocket.Conn
	decode func(v *viewer, msg []byte) error
	want   int
	full   chan struct{} // closed once want events have arrived

	mu        sync.Mutex // guards what follows, read by the benchmark on a timeout
	lat       []time.Duration
	snapshots int
	omitted   int
	err       error
}

func (v *viewer) read() {
	defer v.conn.Close()
	for {
		_, msg, err := v.conn.ReadMessage()
		if err != nil {
			return // the server closed: the benchmark is over
		}
		if err := v.decode(v, msg); err != nil {
			v.mu.Lock()
			v.err = err
			v.mu.Unlock()
		}
	}
}

// got records one event on arrival.
func (v *viewer) got(e flow.Event) {
	v.mu.Lock()
	v.lat = append(v.lat, time.Since(e.Time))
	if len(v.lat) == v.want {
		close(v.full)
	}
	v.mu.Unlock()
}

func (v *viewer) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.lat)
}

func (v *viewer) status() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return fmt.Sprintf("snapshots %d, omitted %d, decode error %v", v.snapshots, v.omitted, v.err)
}

// startBatched serves a hub with its defaults except MaxEvents, raised so that
// no frame is sampled and every client must receive every event.
func startBatched() *fanout {
	h := hub.New(hub.Config{
		Snapshot:  func() any { return map[string]string{"type": "snapshot"} },
		MaxEvents: 100_000,
	})
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan struct{})
	go func() { h.Run(ctx); close(running) }()
	var serving sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.Add(1)
		defer serving.Done()
		conn, err := fanoutUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.Serve(conn, func([]byte) any { return map[string]string{"type": "reply"} })
	}))
	return &fanout{
		url:     wsURL(srv),
		sink:    h,
		clients: h.Clients,
		decode:  decodeFrame,
		stop: func() error {
			cancel()
			<-running
			defer srv.Close()
			if !waitTimeout(&serving, fanoutWait) {
				return fmt.Errorf("hub: %d clients still served after Run returned", h.Clients())
			}
			return nil
		},
	}
}

// decodeFrame is what a browser does with a hub message.
func decodeFrame(v *viewer, msg []byte) error {
	var m struct {
		Type    string       `json:"type"`
		Events  []flow.Event `json:"events"`
		Omitted int          `json:"omitted"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return err
	}
	switch m.Type {
	case "snapshot":
		v.mu.Lock()
		v.snapshots++
		v.mu.Unlock()
	case "frame":
		for _, e := range m.Events {
			v.got(e)
		}
		if m.Omitted > 0 {
			v.mu.Lock()
			v.omitted += m.Omitted
			v.mu.Unlock()
		}
	}
	return nil
}

// bare is the plain broadcast of gorilla's chat example, without the
// coalescing of queued messages: each event is encoded once and queued for
// every client as a message of its own; one writer per client drains its
// queue. A client whose queue is full is dropped, as there.
type bare struct {
	mu      sync.Mutex
	clients map[*bareClient]struct{}
	dropped int
}

type bareClient struct {
	send chan []byte
}

var _ flow.Sink = (*bare)(nil)

func (s *bare) Emit(e flow.Event) {
	msg, err := json.Marshal(e)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		select {
		case c.send <- msg:
		default:
			s.drop(c)
		}
	}
}

// drop forgets c and lets its writer close the connection; s.mu is held.
func (s *bare) drop(c *bareClient) {
	if _, ok := s.clients[c]; ok {
		delete(s.clients, c)
		close(c.send)
		s.dropped++
	}
}

func (s *bare) serve(conn *websocket.Conn) {
	c := &bareClient{send: make(chan []byte, bareQueue())}
	s.mu.Lock()
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	var writing sync.WaitGroup
	writing.Go(func() {
		defer conn.Close() // unblocks the reader
		for msg := range c.send {
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if conn.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
	})
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	s.mu.Lock()
	if _, ok := s.clients[c]; ok {
		delete(s.clients, c)
		close(c.send)
	}
	s.mu.Unlock()
	writing.Wait()
}

func startBare() *fanout {
	s := &bare{clients: make(map[*bareClient]struct{})}
	var serving sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.Add(1)
		defer serving.Done()
		conn, err := fanoutUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.serve(conn)
	}))
	return &fanout{
		url:  wsURL(srv),
		sink: s,
		clients: func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.clients)
		},
		decode: decodeEvent,
		stop: func() error {
			s.mu.Lock()
			for c := range s.clients {
				delete(s.clients, c)
				close(c.send)
			}
			dropped := s.dropped
			s.mu.Unlock()
			defer srv.Close()
			if !waitTimeout(&serving, fanoutWait) {
				return fmt.Errorf("bare: connections still served after stop")
			}
			if dropped > 0 {
				return fmt.Errorf("bare: %d slow clients were dropped", dropped)
			}
			return nil
		},
	}
}

// decodeEvent is what a browser does with a bare message: one event.
func decodeEvent(v *viewer, msg []byte) error {
	var e flow.Event
	if err := json.Unmarshal(msg, &e); err != nil {
		return err
	}
	v.got(e)
	return nil
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// cpuTime is the user and system CPU time of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitTimeout waits for wg, but no longer than d; it reports whether wg ended.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkNoNulls makes a busy scenario's stats ready for a frame: twelve
// nodes of four facts each, none of them with a nil list, as most frames
// are. Every frame of every watched scenario pays this.
//
//	go test -run '^$' -bench NoNulls ./server/hub
func BenchmarkNoNulls(b *testing.B) {
	st := flow.Stats{Nodes: map[string]flow.NodeState{}}
	for i := range 12 {
		st.Nodes[fmt.Sprint("node-", i)] = flow.NodeState{State: "up", Facts: []flow.Fact{
			flow.Count("depth", int64(i), "depth %d"), flow.Count("lag", 3, ""),
			{Name: "partitions", Value: []int{0, 1}}, {Name: "ok", Value: true},
		}}
		st.Counters = append(st.Counters, flow.Counter{Name: fmt.Sprint("c", i), Value: int64(i)})
	}
	for b.Loop() {
		hub.NoNulls(st)
	}
}
