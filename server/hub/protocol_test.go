package hub_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowlab/flow"
	"flowlab/server/hub"
)

// envelope is what every message carries besides its own fields.
type envelope struct {
	V    *int    `json:"v"`
	Seq  *uint64 `json:"seq"`
	Time int64   `json:"time"`
	Type string  `json:"type"`
}

func readEnvelope(t *testing.T, conn *websocket.Conn) (envelope, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		t.Fatalf("%s: %v", msg, err)
	}
	if e.V == nil || *e.V != hub.Version {
		t.Fatalf("%s: want \"v\":%d", msg, hub.Version)
	}
	if at := time.UnixMilli(e.Time); time.Since(at).Abs() > time.Minute {
		t.Fatalf("%s: time %v is not now", msg, at)
	}
	if (e.Seq == nil) != (e.Type == "reply") {
		t.Fatalf("%s: a reply has no seq, every other message has one", msg)
	}
	return e, string(msg)
}

// Every message carries the version and the time; the snapshot, frames and
// announcements carry seq, one stream numbered from the snapshot's on; a
// reply, which is for one client only, carries none.
func TestMessagesCarryVersionTimeAndSeq(t *testing.T) {
	h := hub.New(hub.Config{
		Snapshot: func() any { return map[string]any{"type": "snapshot", "list": []string(nil)} },
		Stats:    func() any { return struct{ Badges []string }{} },
		Interval: time.Hour,
	})
	srv, stop := startHubWith(t, h, func(msg []byte) any {
		h.Announce(map[string]any{"type": "knobs", "knobs": []flow.Knob(nil)})
		return map[string]any{"type": "reply", "knobs": []flow.Knob(nil)}
	})
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	snap, raw := readEnvelope(t, conn)
	if snap.Type != "snapshot" || *snap.Seq != 0 || !strings.Contains(raw, `"list":[]`) {
		t.Fatalf("first message %s; want a snapshot with seq 0 and an empty list", raw)
	}
	waitClients(t, h, 1)

	next := *snap.Seq + 1
	var got []string
	// expect reads n messages, checking each.
	expect := func(n int) {
		t.Helper()
		for range n {
			e, raw := readEnvelope(t, conn)
			got = append(got, e.Type)
			if strings.Contains(raw, "null") {
				t.Errorf("%s: has a null", raw)
			}
			if e.Type == "reply" {
				continue
			}
			if *e.Seq != next {
				t.Fatalf("%s: seq %d, want %d", raw, *e.Seq, next)
			}
			next++
		}
	}
	h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "m"})
	h.Flush()
	expect(1)
	conn.WriteMessage(websocket.TextMessage, []byte(`{"id":1}`))
	expect(2) // the announcement and the reply, in either order
	h.Flush() // nothing new: no frame
	h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "n"})
	h.Flush()
	expect(1)
	if g := strings.Join(got, " "); g != "frame knobs reply frame" && g != "frame reply knobs frame" {
		t.Fatalf("got %q, want a frame, the announcement and the reply, a frame", got)
	}
}

// A client that lags is resynced by a snapshot whose seq covers every message
// it missed: after it, seq goes on by one with no gap, and no message the
// snapshot covers comes after it.
func TestResyncSnapshotCoversWhatWasMissed(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	h := hub.New(hub.Config{
		// The first snapshot waits, so the client's queue overflows meanwhile.
		Snapshot: func() any {
			if first {
				first = false
				close(entered)
				<-release
			}
			return map[string]string{"type": "snapshot"}
		},
		QueueLen: 2,
		Interval: time.Hour,
	})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	waitClients(t, h, 1)
	<-entered
	const missed = 10
	for range missed {
		h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "m"})
		h.Flush()
	}
	close(release)
	if e, raw := readEnvelope(t, conn); e.Type != "snapshot" || *e.Seq != 0 {
		t.Fatalf("first message %s; want the snapshot made before any frame", raw)
	}
	e, raw := readEnvelope(t, conn)
	if e.Type != "snapshot" || *e.Seq != missed {
		t.Fatalf("second message %s; want a snapshot covering seq %d", raw, missed)
	}
	h.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "m"})
	h.Flush()
	h.Announce(map[string]string{"type": "knobs"})
	for want := uint64(missed + 1); want <= missed+2; want++ {
		if e, raw := readEnvelope(t, conn); *e.Seq != want {
			t.Fatalf("%s: want seq %d", raw, want)
		}
	}
}

// NoNulls makes every nil list and map empty, at any depth, and copies what
// it changes instead of writing into what the caller shares.
func TestNoNullsEmptiesListsWithoutTouchingTheOriginal(t *testing.T) {
	type node struct {
		Badges []string          `json:"badges"`
		Facts  map[string]int    `json:"facts"`
		Value  any               `json:"value"`
		Raw    json.RawMessage   `json:"raw,omitempty"`
		Next   *node             `json:"next,omitempty"`
		Byname map[string][]bool `json:"byname"`
	}
	shared := []node{{Badges: []string{"a"}, Facts: map[string]int{}, Byname: map[string][]bool{"x": nil}}, {}}
	in := map[string]any{"nodes": shared, "ptr": &node{Next: &node{}}, "none": nil, "list": []any{nil, []int(nil)}}
	b, err := json.Marshal(hub.NoNulls(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"list":[null,[]],"nodes":[` +
		`{"badges":["a"],"facts":{},"value":null,"byname":{"x":[]}},` +
		`{"badges":[],"facts":{},"value":null,"byname":{}}],` +
		`"none":null,` +
		`"ptr":{"badges":[],"facts":{},"value":null,"next":{"badges":[],"facts":{},"value":null,"byname":{}},"byname":{}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if shared[1].Badges != nil || shared[0].Byname["x"] != nil {
		t.Fatal("NoNulls wrote into its input")
	}
}
