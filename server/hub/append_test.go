package hub_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowlab/flow"
	"flowlab/server/hub"
)

// tricky are strings that encoding/json escapes: quotes, controls, HTML,
// invalid UTF-8, the JavaScript line separators, and plain non-ASCII.
var tricky = []string{"", "plain", `say "hi" \ there`, "tab\tnew\nline\r\b\f\x00\x1f", "<b>&amp;</b>",
	"bad \xff\xfe utf8 \xe2\x82", "sep\u2028par\u2029", "ünïcødé ✓ 🙂"}

// floats cover both of encoding/json's formats and their edges.
var floats = []float64{0, math.Copysign(0, -1), 1, -1.5, 3.7, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 1e20, 1e21, -1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64}

// values are what a fact or a knob holds, and some it might.
var values = []any{nil, true, false, 0, -7, int64(1) << 62, 2.5, "word", []int{}, []int(nil), []int{0, 3, 1},
	time.Duration(1500), []string(nil), map[string]int{"b": 2, "a": 1}, json.Number("12")}

// eventsForEncoding are events of every shape: each detail field alone,
// and all of them at once.
func eventsForEncoding() []flow.Event {
	at := time.Date(2026, 11, 29, 7, 21, 24, 537387259, time.UTC)
	base := flow.Event{Seq: 47, Time: at, Lab: "t4805-1", Scenario: "request-response", Kind: flow.KindRequest}
	var evs []flow.Event
	add := func(f func(e *flow.Event)) {
		e := base
		f(&e)
		evs = append(evs, e)
	}
	add(func(e *flow.Event) {})
	add(func(e *flow.Event) { e.Time = time.Time{} })
	add(func(e *flow.Event) { e.Time = at.In(time.FixedZone("x", -(23*3600 + 59*60))) })
	add(func(e *flow.Event) { e.Time = at.Truncate(time.Second) })
	add(func(e *flow.Event) { e.From, e.To, e.MsgID, e.Attempt = "order-service", "product-service", "req-5", 1 })
	add(func(e *flow.Event) { e.Attempt = -3 })
	add(func(e *flow.Event) { e.Detail.Status = 503 })
	add(func(e *flow.Event) { e.Detail.LatencyMS = 3.7 })
	add(func(e *flow.Event) { e.Detail.DelayMS = 1e-9 })
	add(func(e *flow.Event) { e.Detail.Outcome = "ok" })
	add(func(e *flow.Event) { e.Detail.Error = "dial tcp: <refused> & gone" })
	add(func(e *flow.Event) { e.Detail.Node, e.Detail.State = "breaker", "open" })
	add(func(e *flow.Event) { e.Detail.Knob = "rate" })
	add(func(e *flow.Event) { e.Detail.Queue = "orders" })
	add(func(e *flow.Event) { e.Detail.Partition = -1 })
	add(func(e *flow.Event) { e.Detail.Offset = 1 << 40 })
	add(func(e *flow.Event) { e.Detail.Key = "k" })
	add(func(e *flow.Event) { e.Detail.Payload = `{"id":1}` })
	add(func(e *flow.Event) { e.Detail.Raw = true })
	add(func(e *flow.Event) { e.Detail.External = true })
	add(func(e *flow.Event) { e.Detail.Redeliver = true })
	add(func(e *flow.Event) { e.Detail.Duplicate = true })
	for _, v := range values {
		add(func(e *flow.Event) { e.Kind, e.Detail.Knob, e.Detail.Value = flow.KindState, "k", v })
	}
	for _, s := range tricky {
		add(func(e *flow.Event) { e.Lab, e.Scenario, e.Kind, e.From, e.Detail.Payload = s, s, flow.Kind(s), s, s })
	}
	for _, f := range floats {
		add(func(e *flow.Event) { e.Detail.LatencyMS, e.Detail.DelayMS = f, -f })
	}
	add(func(e *flow.Event) {
		e.From, e.To, e.MsgID, e.Attempt = "a", "b", "m", 2
		e.Detail = flow.Detail{Status: 200, LatencyMS: 1.25, DelayMS: 100, Outcome: "ok", Error: "e", Node: "n",
			State: "s", Knob: "k", Value: []int{1}, Queue: "q", Partition: 2, Offset: 9, Key: "key", Payload: "p",
			Raw: true, External: true, Redeliver: true, Duplicate: true}
	})
	return evs
}

// statsForEncoding are stats of every shape: nil lists and maps, facts of
// every value type, with and without badges, duplicates or a depth.
func statsForEncoding() []flow.Stats {
	at := time.Date(2026, 11, 29, 7, 21, 24, 536117157, time.UTC)
	var facts []flow.Fact
	for i, v := range values {
		facts = append(facts, flow.Fact{Name: tricky[i%len(tricky)], Value: v, Badge: tricky[(i+1)%len(tricky)]})
	}
	busy := flow.Stats{
		Nodes: map[string]flow.NodeState{
			"order-service": {State: "ok", Facts: []flow.Fact{flow.Count("in-flight", 37, "in flight %d"),
				flow.Measure("latency-ms", 12.5, "%.1f ms"), flow.Flag("paused", false, "paused"),
				flow.Word("error", "", "%s"), flow.Numbers("partitions", nil, "partitions %v")}},
			"breaker": {State: "off"},
			"zz<&>":   {State: "\xff", Facts: facts},
			"":        {},
		},
		Counters: []flow.Counter{{Name: "calls", Label: "calls", Value: 1}, {Name: "in-flight", Label: `in "flight"`, Value: -2}},
		Ledger: flow.Ledger{Total: flow.Counter{Name: "calls", Label: "calls", Value: 3},
			Parts: []flow.Counter{{Name: "ok", Label: "ok", Value: 3}}, Duplicates: &flow.Counter{Name: "dup", Label: "dup"}},
		Series: flow.Point{Time: at, Throughput: 19.5, Success: 100, P50MS: 1e-7, P99MS: 1e21, Depth: 4},
	}
	out := []flow.Stats{{}, busy}
	for _, f := range floats {
		st := busy
		st.Series = flow.Point{Time: at, Throughput: f, Success: -f, P50MS: f / 3, P99MS: f * 0.75, Depth: f}
		out = append(out, st)
	}
	return out
}

// The hand-written encoding of events and stats is byte for byte what
// encoding/json makes of them after NoNulls, which the protocol was written
// against.
func TestAppendedJSONIsEncodingJSONs(t *testing.T) {
	for _, e := range eventsForEncoding() {
		want, err := json.Marshal(hub.NoNulls(e))
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", e, err)
		}
		got, err := hub.AppendEvent([]byte("x"), &e)
		if err != nil || string(got[1:]) != string(want) {
			t.Errorf("event %+v:\n got  %s (%v)\n want %s", e, got[1:], err, want)
		}
	}
	for _, st := range statsForEncoding() {
		want, err := json.Marshal(hub.NoNulls(st))
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", st, err)
		}
		got, err := hub.AppendStats([]byte("x"), st)
		if err != nil || string(got[1:]) != string(want) {
			t.Errorf("stats %+v:\n got  %s (%v)\n want %s", st, got[1:], err, want)
		}
	}
}

// What encoding/json refuses (NaN, infinities, a year past 9999) the
// hand-written encoding refuses too, so a frame never carries invalid JSON.
func TestAppendedJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	at := time.Date(2026, 11, 29, 7, 21, 24, 0, time.UTC)
	for _, e := range []flow.Event{
		{Time: at, Detail: flow.Detail{LatencyMS: math.NaN()}},
		{Time: at, Detail: flow.Detail{DelayMS: math.Inf(1)}},
		{Time: at, Detail: flow.Detail{Value: math.Inf(-1)}},
		{Time: at.AddDate(8000, 0, 0)},
		{Time: at.AddDate(-2027, 0, 0)},
		{Time: at.In(time.FixedZone("far", 24*3600))},
	} {
		if _, err := json.Marshal(e); err == nil {
			t.Fatalf("encoding/json took %+v: the case is wrong", e)
		}
		if got, err := hub.AppendEvent(nil, &e); err == nil {
			t.Errorf("event %+v encoded as %s, want an error", e, got)
		}
	}
	st := flow.Stats{Nodes: map[string]flow.NodeState{"n": {Facts: []flow.Fact{flow.Measure("x", math.NaN(), "")}}}}
	if got, err := hub.AppendStats(nil, st); err == nil {
		t.Errorf("stats with NaN encoded as %s, want an error", got)
	}
	st = flow.Stats{Series: flow.Point{Time: at, Depth: math.Inf(1)}}
	if got, err := hub.AppendStats(nil, st); err == nil {
		t.Errorf("stats with an infinite depth encoded as %s, want an error", got)
	}
}

// FuzzAppendedJSON compares the hand-written encoding with encoding/json's
// for any string, number and time; plain go test runs its seeds.
func FuzzAppendedJSON(f *testing.F) {
	for i, s := range tricky {
		f.Add(s, floats[i%len(floats)], int64(i)*1e15, int64(i))
	}
	f.Fuzz(func(t *testing.T, s string, x float64, n int64, ns int64) {
		at := time.Unix(n%(1<<35), ns%1e9).UTC()
		e := flow.Event{Seq: uint64(n), Time: at, Lab: s, Scenario: s, Kind: flow.Kind(s), MsgID: s, Attempt: int(n),
			Detail: flow.Detail{LatencyMS: x, Error: s, Value: s, Offset: n}}
		st := flow.Stats{
			Nodes:    map[string]flow.NodeState{s: {State: s, Facts: []flow.Fact{{Name: s, Value: x, Badge: s}, {Name: "n", Value: n}}}, "n": {}},
			Counters: []flow.Counter{{Name: s, Label: s, Value: n}},
			Series:   flow.Point{Time: at, Throughput: x, Depth: x},
		}
		for _, c := range []struct {
			v   any
			app func() ([]byte, error)
		}{{e, func() ([]byte, error) { return hub.AppendEvent(nil, &e) }}, {st, func() ([]byte, error) { return hub.AppendStats(nil, st) }}} {
			want, werr := json.Marshal(hub.NoNulls(c.v))
			got, gerr := c.app()
			if (werr != nil) != (gerr != nil) || werr == nil && string(got) != string(want) {
				t.Fatalf("%+v:\n got  %s (%v)\n want %s (%v)", c.v, got, gerr, want, werr)
			}
		}
	})
}

// appendingStats are stats that append themselves, as the server's do.
type appendingStats struct{ flow.Stats }

func (s *appendingStats) AppendJSON(dst []byte) ([]byte, error) { return hub.AppendStats(dst, s.Stats) }

// A flush with nothing new, no event and the stats as before, makes no
// garbage: the stats are encoded into a buffer the hub keeps from frame to
// frame, and compared there. A watched scenario flushes ten times a second,
// however idle.
func TestUnchangedFlushAllocatesNothing(t *testing.T) {
	st := &appendingStats{statsForEncoding()[1]}
	delete(st.Nodes, "zz<&>") // its facts hold types no scenario uses, which go through encoding/json
	h := hub.New(hub.Config{Stats: func() any { return st }, Interval: time.Hour})
	srv, stop := startHub(t, h)
	defer stop()
	conn := mustDial(t, srv, nil)
	defer conn.Close()
	read(t, conn) // snapshot
	waitClients(t, h, 1)
	h.Flush()
	if m := readRaw(t, conn); !strings.Contains(m, `"stats":{"nodes":{`) {
		t.Fatalf("first frame %s, want the stats", m)
	}
	if n := testing.AllocsPerRun(100, h.Flush); n != 0 {
		t.Errorf("an unchanged flush made %v allocations, want none", n)
	}
	st.Counters = []flow.Counter{{Name: "calls", Label: "calls", Value: 2}}
	h.Flush()
	if m := readRaw(t, conn); !strings.Contains(m, `"counters":[{"name":"calls","label":"calls","value":2}]`) {
		t.Fatalf("frame after the stats moved %s, want the new counters", m)
	}
}

func readRaw(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}
