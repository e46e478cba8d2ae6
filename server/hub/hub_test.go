package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/server/hub"
)

// startHub serves h on a test server whose handler answers every command
// with {"type":"reply","echo":…}.
func startHub(t testing.TB, h *hub.Hub) (*httptest.Server, context.CancelFunc) {
	t.Helper()
	return startHubWith(t, h, func(msg []byte) any { return map[string]any{"type": "reply", "echo": string(msg)} })
}

// startHubWith serves h with handle answering every command.
func startHubWith(t testing.TB, h *hub.Hub, handle hub.Handler) (*httptest.Server, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.Serve(conn, handle)
	}))
	return srv, func() {
		cancel()
		<-done
		srv.Close()
	}
}

func mustDial(t testing.TB, srv *httptest.Server, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return conn
}

type message struct {
	Type    string       `json:"type"`
	Events  []flow.Event `json:"events"`
	Omitted int          `json:"omitted"`
	Stats   any          `json:"stats"`
	Echo    string       `json:"echo"`
}

func read(t testing.TB, conn *websocket.Conn) message {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m message
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func TestJoiningClientGetsSnapshotFirst(t *testing.T) {
	h := hub.New(hub.Config{Snapshot: func() any { return map[string]string{"type": "snapshot"} }})
	srv, stop := startHub(t, h)
	defer stop()
	h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "before"}) // before the client: only in Recent
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	if m := read(t, conn); m.Type != "snapshot" {
		t.Fatalf("first message is %q, want snapshot", m.Type)
	}
	waitClients(t, h, 1)
	h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "after"})
	m := read(t, conn)
	if m.Type != "frame" || len(m.Events) != 1 || m.Events[0].MsgID != "after" {
		t.Fatalf("second message = %+v, want a frame with the event emitted after joining", m)
	}
	if r := h.Recent(); len(r) != 2 || r[0].MsgID != "before" {
		t.Fatalf("recent = %+v, want both events oldest first", r)
	}
}

func TestCommandsAreAnswered(t *testing.T) {
	h := hub.New(hub.Config{})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"set"}`))
	if m := read(t, conn); m.Type != "reply" || m.Echo != `{"op":"set"}` {
		t.Fatalf("reply = %+v", m)
	}
	big := `{"op":"` + strings.Repeat("x", hub.CommandMax) + `"}`
	conn.WriteMessage(websocket.TextMessage, []byte(big))
	var r map[string]any
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.ReadJSON(&r); err != nil || r["ok"] != false || !strings.Contains(r["error"].(string), "too large") {
		t.Fatalf("oversize command answered %v, %v; want an error reply", r, err)
	}
}

// A command in a binary frame is refused with an error reply carrying its id,
// and never reaches the handler.
func TestBinaryFrameIsRefused(t *testing.T) {
	var calls atomic.Int64
	h := hub.New(hub.Config{})
	srv, stop := startHubWith(t, h, func(msg []byte) any { calls.Add(1); return map[string]any{"type": "reply", "echo": string(msg)} })
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	conn.WriteMessage(websocket.BinaryMessage, []byte(`{"id":3,"op":"set","knob":"rate","value":0}`))
	r := readReply(t, conn)
	if r.OK || r.ID != 3 || r.Kind != "invalid" || !strings.Contains(r.Error, "text frame") {
		t.Fatalf("binary command answered %+v; want an invalid reply for id 3 naming text frames", r)
	}
	if calls.Load() != 0 {
		t.Fatal("the handler was called for a binary frame")
	}
}

// Commands past a burst are refused, without reaching the handler, until the
// rate allows more.
func TestCommandsAreRateLimited(t *testing.T) {
	var calls atomic.Int64
	h := hub.New(hub.Config{})
	srv, stop := startHubWith(t, h, func(msg []byte) any { calls.Add(1); return map[string]any{"type": "reply", "ok": true} })
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	start := time.Now()
	const n = 200
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":%d}`, i+1)))
		}
	}()
	refused := 0
	for range n {
		r := readReply(t, conn)
		if r.OK {
			continue
		}
		refused++
		if r.ID == 0 || r.Kind != "invalid" || !strings.Contains(r.Error, "too many commands") {
			t.Fatalf("refused command answered %+v; want its id and a clear error", r)
		}
	}
	elapsed := time.Since(start)
	handled := int(calls.Load())
	if handled+refused != n || handled < 20 || float64(handled) > 21+10*elapsed.Seconds() {
		t.Fatalf("%d of %d commands handled in %v, %d refused; want a burst of 20, then 10 a second", handled, n, elapsed, refused)
	}
	t.Logf("%d of %d commands handled in %v", handled, n, elapsed)
	<-sent                             // a connection takes one writer at a time
	time.Sleep(300 * time.Millisecond) // the bucket refills
	conn.WriteMessage(websocket.TextMessage, []byte(`{"id":999}`))
	if r := readReply(t, conn); !r.OK {
		t.Fatalf("after a pause a command was refused: %+v", r)
	}
}

// A frame with stats and no events carries an empty list, not null: the page
// iterates it.
func TestFrameWithoutEventsCarriesEmptyList(t *testing.T) {
	n := 0
	h := hub.New(hub.Config{Stats: func() any { n++; return n }, Interval: time.Hour})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	waitClients(t, h, 1)
	h.Flush()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg), `"events":[]`) {
		t.Fatalf("frame %s; want \"events\":[]", msg)
	}
}

type replyMsg struct {
	Type  string `json:"type"`
	ID    int    `json:"id"`
	OK    bool   `json:"ok"`
	Kind  string `json:"kind"`
	Error string `json:"error"`
}

func readReply(t testing.TB, conn *websocket.Conn) replyMsg {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var r replyMsg
		if err := conn.ReadJSON(&r); err != nil {
			t.Fatalf("read: %v", err)
		}
		if r.Type == "reply" {
			return r
		}
	}
}

// A client that stops reading must not delay another: every event reaches the
// fast client, Emit never waits, and the stalled client, once it reads again,
// is resynced with a snapshot rather than replayed.
func TestStalledClientDoesNotDelayFastOne(t *testing.T) {
	var snapshots sync.Map
	h := hub.New(hub.Config{
		Snapshot:  func() any { return map[string]string{"type": "snapshot"} },
		QueueLen:  32,
		MaxEvents: 100_000,
		Interval:  20 * time.Millisecond,
	})
	srv, stop := startHub(t, h)
	defer stop()

	// A tiny receive buffer makes the stalled client's TCP window fill fast.
	small := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}).DialContext}
	stalled := mustDial(t, srv, small)
	defer stalled.Close()
	fast := mustDial(t, srv, nil)
	defer fast.Close()
	read(t, fast) // snapshot
	waitClients(t, h, 2)

	// 16 MB in all: more than loopback's socket buffers hold, so the stalled
	// client's writer blocks, yet quick enough to stay within the hub's write
	// deadline, after which a client is dropped rather than resynced.
	const n = 4_000
	payload := strings.Repeat("p", 4096)
	got := make(chan int)
	go func() {
		seen := 0
		for seen < n {
			m := read(t, fast)
			if m.Type == "snapshot" {
				snapshots.Store("fast", true)
			}
			seen += len(m.Events)
		}
		got <- seen
	}()
	emitted := make(chan struct{})
	go func() {
		for i := range n {
			h.Emit(flow.Event{Kind: flow.KindPublish, MsgID: "m", Seq: uint64(i), Detail: flow.Detail{Payload: payload}})
			if i%32 == 31 {
				// One burst a frame: 125 frames, far more than the queue
				// holds; 50 ms apart, so the fast client may be starved of
				// CPU for 1.6 s (32 frames) on a busy machine before it lags
				// a whole queue.
				time.Sleep(50 * time.Millisecond)
			}
		}
		close(emitted)
	}()
	select {
	case <-emitted:
	case <-time.After(30 * time.Second):
		t.Fatal("Emit blocked behind a stalled client")
	}
	select {
	case seen := <-got:
		if seen != n {
			t.Fatalf("fast client got %d events, want %d", seen, n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fast client did not get every event")
	}
	if _, ok := snapshots.Load("fast"); ok {
		t.Fatal("the fast client was resynced: it was slowed by the stalled one")
	}

	// The stalled client reads again: after the frames already in flight, it
	// gets a fresh snapshot instead of what it missed.
	resynced := false
	for i := 0; i < 10_000 && !resynced; i++ {
		if m := read(t, stalled); m.Type == "snapshot" && i > 0 {
			resynced = true
		}
	}
	if !resynced {
		t.Fatal("the stalled client was never resynced with a snapshot")
	}
}

func TestFramesSampleWholeMessagesButCountTheRest(t *testing.T) {
	h := hub.New(hub.Config{MaxEvents: 50, Interval: time.Hour})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn)
	waitClients(t, h, 1)
	for i := range 1000 {
		h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "msg-" + string(rune('a'+i%200))})
		h.Emit(flow.Event{Kind: flow.KindResponse, MsgID: "msg-" + string(rune('a'+i%200))})
	}
	h.Emit(flow.Event{Kind: flow.KindState})
	h.Flush()
	m := read(t, conn)
	if len(m.Events)+m.Omitted != 2001 {
		t.Fatalf("events %d + omitted %d != 2001", len(m.Events), m.Omitted)
	}
	if len(m.Events) >= 2001 || len(m.Events) == 0 {
		t.Fatalf("sampled %d events; want a sample", len(m.Events))
	}
	kinds := map[string]int{}
	state := false
	for _, e := range m.Events {
		kinds[e.MsgID+string(e.Kind)]++
		state = state || e.Kind == flow.KindState
	}
	for _, e := range m.Events {
		if e.MsgID != "" && kinds[e.MsgID+"request"] != kinds[e.MsgID+"response"] {
			t.Fatalf("message %s kept without its other hops", e.MsgID)
		}
	}
	if !state {
		t.Fatal("a state event was sampled out")
	}
}

// An outside client's record shows up in a sampled frame; a flood of them
// is sampled too, past half the frame.
func TestFramesKeepOutsideClientsRecords(t *testing.T) {
	h := hub.New(hub.Config{MaxEvents: 50, Interval: time.Hour})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn)
	waitClients(t, h, 1)
	for i := range 2000 {
		h.Emit(flow.Event{Kind: flow.KindDeliver, MsgID: fmt.Sprintf("m%d", i)})
	}
	h.Emit(flow.Event{Kind: flow.KindDeliver, MsgID: "ext-1", Detail: flow.Detail{External: true}})
	h.Flush()
	m := read(t, conn)
	if !slices.ContainsFunc(m.Events, func(e flow.Event) bool { return e.MsgID == "ext-1" }) {
		t.Fatalf("the outside record is not among the %d events of a sampled frame", len(m.Events))
	}
	for i := range 2000 {
		h.Emit(flow.Event{Kind: flow.KindDeliver, MsgID: fmt.Sprintf("ext-%d", i+2), Detail: flow.Detail{External: true}})
	}
	h.Flush()
	if m := read(t, conn); len(m.Events) > 2*50 {
		t.Fatalf("a flood of outside records filled a frame with %d events", len(m.Events))
	}
}

func TestNoGoroutineLeftAfterManyClients(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := hub.New(hub.Config{Snapshot: func() any { return map[string]string{"type": "snapshot"} }})
	srv, stop := startHub(t, h)
	for range 1000 {
		conn := mustDial(t, srv, nil)
		read(t, conn)
		conn.Close()
	}
	waitClients(t, h, 0)
	stop()
}

// A browser that leaves while its replies are still being written is
// forgotten: its reader, blocked on a full reply queue when the writer gives
// up, must end too.
func TestClientLeavingWhileRepliesWaitIsForgotten(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := hub.New(hub.Config{})
	big := strings.Repeat("r", 1<<20)
	srv, stop := startHubWith(t, h, func([]byte) any { return map[string]any{"type": "reply", "echo": big} })
	defer stop()
	small := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}).DialContext}
	for range 3 {
		conn := mustDial(t, srv, small)
		waitClients(t, h, 1)
		// 16 replies of 1 MiB, never read: more than the socket buffers and
		// the reply queue hold, so the writer blocks and the reader waits.
		for i := range 16 {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":%d}`, i))); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond) // let the server read them; a bounded pause, not a timing assertion
		// Closing with unread data resets the connection: the writer's next
		// write fails at once.
		conn.NetConn().(*net.TCPConn).SetLinger(0)
		conn.Close()
		waitClients(t, h, 0)
	}
}

func waitClients(t testing.TB, h *hub.Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", h.Clients(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An announcement made while answering one client's command reaches every
// client as a message of its own, that client too.
func TestAnnouncementReachesEveryClient(t *testing.T) {
	h := hub.New(hub.Config{})
	srv, stop := startHubWith(t, h, func(msg []byte) any {
		h.Announce(map[string]string{"type": "knobs", "echo": string(msg)})
		return map[string]string{"type": "reply"}
	})
	defer stop()
	a, b := mustDial(t, srv, nil), mustDial(t, srv, nil)
	defer a.Close()
	defer b.Close()
	read(t, a) // snapshots
	read(t, b)
	waitClients(t, h, 2)
	a.WriteMessage(websocket.TextMessage, []byte(`{"op":"set"}`))
	// The sender gets its reply too, before or after.
	for name, conn := range map[string]*websocket.Conn{"sender": a, "other": b} {
		var got []string
		for len(got) < 2 && !slices.Contains(got, `knobs {"op":"set"}`) {
			m := read(t, conn)
			got = append(got, m.Type+" "+m.Echo)
		}
		if !slices.Contains(got, `knobs {"op":"set"}`) {
			t.Errorf("%s got %q, want the announcement", name, got)
		}
	}
}

// A frame carries the stats whole, as the rest of the frame is JSON, and
// only when they changed since the last frame.
func TestFrameCarriesStatsOnlyWhenChanged(t *testing.T) {
	type stats struct {
		Nodes map[string][]string `json:"nodes"`
		Note  string              `json:"note"`
	}
	cur := stats{Nodes: map[string][]string{"a": {"x"}, "b": nil}, Note: `say "hi"`}
	h := hub.New(hub.Config{Stats: func() any { return cur }, Interval: time.Hour})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	waitClients(t, h, 1)
	next := func() map[string]json.RawMessage {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("frame %s is not a JSON object: %v", msg, err)
		}
		return m
	}
	h.Flush()
	if got := string(next()["stats"]); got != `{"nodes":{"a":["x"],"b":[]},"note":"say \"hi\""}` {
		t.Fatalf("stats %s", got)
	}
	h.Flush() // nothing changed: no frame
	h.Emit(flow.Event{Kind: "state"})
	h.Flush()
	if m := next(); m["stats"] != nil || string(m["type"]) != `"frame"` {
		t.Fatalf("frame after unchanged stats: %v, want events and no stats", m)
	}
	cur.Note = "moved"
	h.Flush()
	if got := string(next()["stats"]); got != `{"nodes":{"a":["x"],"b":[]},"note":"moved"}` {
		t.Fatalf("changed stats %s", got)
	}
}
