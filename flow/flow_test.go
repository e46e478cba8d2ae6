package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

func TestLabNamesDeriveFromTheLab(t *testing.T) {
	def, err := flow.NewLab(flow.DefaultLab)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Name("ecommerce"); got != "ecommerce" {
		t.Errorf("default lab names %q, want the article's ecommerce", got)
	}
	l, err := flow.NewLab("ada-3")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Name("orders"); got != "orders.ada-3" {
		t.Errorf("lab ada-3 names %q", got)
	}
	for _, bad := range []string{"", "Ada", "a b", "a/b", strings.Repeat("a", 33), "-x"} {
		if _, err := flow.NewLab(bad); flow.KindOf(err) != flow.Invalid {
			t.Errorf("NewLab(%q) = %v, want an invalid error", bad, err)
		}
	}
}

// A named instance's labs, the default one too, put "<instance>-" before
// every broker name and their id, so that instances sharing the brokers never
// meet and a load balancer can route a lab's path to its instance.
func TestInstanceLabsPrefixEveryName(t *testing.T) {
	def, err := flow.NewLabIn("eu1", flow.DefaultLab)
	if err != nil {
		t.Fatal(err)
	}
	if def.ID != "eu1-default" || def.Name("ecommerce") != "eu1-ecommerce" {
		t.Errorf("default lab of eu1: id %q, names %q", def.ID, def.Name("ecommerce"))
	}
	l, err := flow.NewLabIn("eu1", "ada-3")
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != "eu1-ada-3" || l.Name("emails.retry.1") != "eu1-emails.retry.1.ada-3" {
		t.Errorf("lab ada-3 of eu1: id %q, names %q", l.ID, l.Name("emails.retry.1"))
	}
	if alone, _ := flow.NewLabIn("", "ada-3"); alone.ID != "ada-3" || alone.Name("orders") != "orders.ada-3" {
		t.Errorf("lab ada-3 of no instance: id %q, names %q", alone.ID, alone.Name("orders"))
	}
	for _, bad := range []string{"EU1", "eu-1", "eu.1", "eu_1", "é", strings.Repeat("a", 13), " "} {
		if _, err := flow.NewLabIn(bad, "ada-3"); flow.KindOf(err) != flow.Invalid || !strings.Contains(err.Error(), "instance name") {
			t.Errorf("NewLabIn(%q, ...) = %v, want an invalid instance name", bad, err)
		}
	}
}

func TestKnobParseChecksEveryType(t *testing.T) {
	latency := flow.Knob{Name: "latency_ms", Label: "Latency", Type: flow.IntKnob, Min: 0, Max: 5000, Unit: "ms"}
	timeout := flow.Knob{Name: "timeout_ms", Label: "Timeout", Type: flow.IntKnob, Min: 50, Max: 10000, Off: "none"}
	up := flow.Knob{Name: "up", Label: "Up", Type: flow.BoolKnob}
	retry := flow.Knob{Name: "retry", Label: "Retry", Type: flow.ChoiceKnob, Choices: []flow.Choice{{Value: "none"}, {Value: "fixed"}}}
	crash := flow.Knob{Name: "crash", Label: "Crash", Type: flow.ActionKnob}
	cases := []struct {
		k    flow.Knob
		raw  string
		want any // nil with ok=false: an error
		ok   bool
	}{
		{latency, "500", 500, true},
		{latency, "5001", nil, false},
		{latency, "-1", nil, false},
		{latency, "2.5", nil, false},
		{latency, `"500"`, nil, false},
		{latency, "1e-400", nil, false},
		{latency, "1e2", nil, false},
		{latency, "500.0", nil, false},
		{latency, "+500", nil, false},
		{latency, "0500", nil, false},
		{latency, "99999999999999999999", nil, false},
		{latency, "", nil, false},
		{timeout, "0", 0, true},
		{timeout, "10", nil, false},
		{timeout, "50", 50, true},
		{up, "false", false, true},
		{up, "0", nil, false},
		{retry, `"fixed"`, "fixed", true},
		{retry, `"sometimes"`, nil, false},
		{retry, "1", nil, false},
		{crash, "", nil, true},
		{crash, "null", nil, true},
		{crash, "true", nil, false},
	}
	for _, c := range cases {
		got, err := c.k.Parse(json.RawMessage(c.raw))
		if c.ok != (err == nil) || (c.ok && got != c.want) {
			t.Errorf("%s.Parse(%s) = %v, %v", c.k.Name, c.raw, got, err)
		}
		if err != nil && flow.KindOf(err) != flow.Invalid {
			t.Errorf("%s.Parse(%s): error kind %s, want invalid", c.k.Name, c.raw, flow.KindOf(err))
		}
	}
}

// box is a minimal scenario for the knob helpers.
type box struct {
	knobs []flow.Knob
	set   []string
}

func (b *box) Name() string                  { return "box" }
func (b *box) Title() string                 { return "Box" }
func (b *box) Summary() string               { return "" }
func (b *box) Knobs() []flow.Knob            { return b.knobs }
func (b *box) View() flow.View               { return flow.View{} }
func (b *box) Stats() flow.Stats             { return flow.Stats{} }
func (b *box) Run(ctx context.Context) error { return nil }
func (b *box) Presets() []flow.Preset {
	return []flow.Preset{
		{Name: "good", Values: map[string]any{"a": 1, "b": true}},
		{Name: "bad", Values: map[string]any{"a": 1, "b": "nope"}},
	}
}
func (b *box) Set(name string, v any) error {
	b.set = append(b.set, fmt.Sprintf("%s=%v", name, v))
	return nil
}

func TestPresetsAreAllOrNothing(t *testing.T) {
	b := &box{knobs: []flow.Knob{
		{Name: "a", Label: "A", Type: flow.IntKnob, Min: 0, Max: 9},
		{Name: "b", Label: "B", Type: flow.BoolKnob},
	}}
	if err := flow.ApplyPreset(b, "bad"); err == nil || len(b.set) != 0 {
		t.Fatalf("bad preset: err %v, set %v; want an error and nothing set", err, b.set)
	}
	if err := flow.ApplyPreset(b, "good"); err != nil || strings.Join(b.set, ",") != "a=1,b=true" {
		t.Fatalf("good preset: err %v, set %v", err, b.set)
	}
	if err := flow.ApplyPreset(b, "missing"); flow.KindOf(err) != flow.NotFound {
		t.Fatalf("missing preset: %v", err)
	}
	if err := flow.SetKnob(b, "zzz", json.RawMessage("1")); flow.KindOf(err) != flow.NotFound {
		t.Fatalf("unknown knob: %v", err)
	}
}

func TestTracesKeepRecentHopsInOrder(t *testing.T) {
	tr := flow.NewTraces(8) // one hop a shard
	for i := range 8 {
		tr.Add(&flow.Event{MsgID: "a", Seq: uint64(i)})
	}
	tr.Add(&flow.Event{MsgID: "b", Seq: 8})   // takes the place of a's oldest hop
	tr.Add(&flow.Event{Kind: flow.KindState}) // no id: not traced
	h, ok := tr.Get("a")
	if !ok || len(h) != 7 {
		t.Fatalf("a = %v %v; want its 7 newest hops", h, ok)
	}
	for i, e := range h {
		if e.Seq != uint64(i+1) {
			t.Fatalf("a's hops = %v; want seq 1 to 7, oldest first", h)
		}
	}
	if h, ok := tr.Get("b"); !ok || len(h) != 1 || h[0].Seq != 8 {
		t.Errorf("b = %v %v", h, ok)
	}
	if _, ok := tr.Get("zzz"); ok {
		t.Error("found a message never added")
	}
}

func TestEmitterStampsEvents(t *testing.T) {
	lab, _ := flow.NewLab("t1")
	var got []flow.Event
	em := flow.NewEmitter(lab, "box", sinkFunc(func(e flow.Event) { got = append(got, e) }))
	em.Emit(flow.Event{Kind: flow.KindRequest, MsgID: "m"})
	em.Emit(flow.Event{Kind: flow.KindResponse, MsgID: "m"})
	if len(got) != 2 || got[0].Seq >= got[1].Seq || got[0].Lab != "t1" || got[0].Scenario != "box" || got[0].Time.IsZero() {
		t.Fatalf("events = %+v", got)
	}
	if h, _ := lab.Traces.Get("m"); len(h) != 2 {
		t.Fatalf("trace of m has %d hops", len(h))
	}
}

type sinkFunc func(flow.Event)

func (f sinkFunc) Emit(e flow.Event) { f(e) }

func TestLedgerBalance(t *testing.T) {
	l := flow.Ledger{Total: flow.Counter{Value: 5}, Parts: []flow.Counter{{Value: 2}, {Value: 3}}}
	if !l.Balanced() {
		t.Error("2 + 3 = 5 reported unbalanced")
	}
	l.Parts[0].Value = 1
	if l.Balanced() {
		t.Error("1 + 3 = 5 reported balanced")
	}
}

// A hop comes back from the traces exactly as it was added, every field of
// it, and a look-up without an id finds nothing (unused slots have none).
func TestTracesKeepEveryField(t *testing.T) {
	tr := flow.NewTraces(1 << 12)
	now := time.Now()
	plain := flow.Event{Seq: 1, Time: now, Lab: "l", Scenario: "s", Kind: flow.KindDeliver, From: "p1", To: "m1",
		MsgID: "a", Attempt: 2, Detail: flow.Detail{Status: 503, LatencyMS: 1.5, DelayMS: 2.5, Outcome: "ok",
			Queue: "q", Partition: 1, Offset: 7, Key: "k", Payload: `{"x":1}`, Raw: true, External: true,
			Redeliver: true, Duplicate: true}}
	full := plain
	full.Seq = 2
	full.Scenario = "other"
	full.Detail.Error, full.Detail.Node, full.Detail.State, full.Detail.Knob, full.Detail.Value = "e", "n", "st", "kn", 3
	tr.Add(&plain)
	tr.Add(&full)
	h, _ := tr.Get("a")
	if len(h) != 2 || !reflect.DeepEqual(h[0], plain) || !reflect.DeepEqual(h[1], full) {
		t.Fatalf("got %+v\nwant %+v\nand  %+v", h, plain, full)
	}
	if _, ok := tr.Get(""); ok {
		t.Error("found hops without an id")
	}
}

// panel is a scenario that keeps its knobs' values and refuses to set those
// named in refuse, as a real one refuses a knob that does not apply now.
type panel struct {
	box
	values  map[string]any
	refuse  map[string]bool
	once    map[string]bool // set once, then refused
	presets []flow.Preset
}

func newPanel(presets ...flow.Preset) *panel {
	return &panel{
		box: box{knobs: []flow.Knob{
			{Name: "a", Label: "A", Type: flow.IntKnob, Min: 0, Max: 9},
			{Name: "b", Label: "B", Type: flow.BoolKnob},
			{Name: "c", Label: "C", Type: flow.ChoiceKnob, Choices: []flow.Choice{{Value: "x"}, {Value: "y"}}},
		}},
		values:  map[string]any{"a": 0, "b": false, "c": "x"},
		refuse:  map[string]bool{},
		presets: presets,
	}
}

func (p *panel) Presets() []flow.Preset { return p.presets }
func (p *panel) Knobs() []flow.Knob {
	ks := slices.Clone(p.knobs)
	for i := range ks {
		ks[i].Value = p.values[ks[i].Name]
	}
	return ks
}
func (p *panel) Set(name string, v any) error {
	if p.refuse[name] {
		return flow.Errorf(flow.Invalid, "%s does not apply now", name)
	}
	if p.once[name] {
		p.refuse[name] = true
	}
	p.values[name] = v
	return nil
}

func TestPresetIsCheckedWholeBeforeAnyOfItApplies(t *testing.T) {
	all := map[string]any{"a": 5, "b": true, "c": "y"}
	for _, c := range []struct {
		preset flow.Preset
		kind   flow.ErrorKind
		says   string
	}{
		{flow.Preset{Name: "p", Values: map[string]any{"a": 5, "zzz": 1}}, flow.NotFound, `no knob "zzz"`},
		{flow.Preset{Name: "p", Values: map[string]any{"a": 5, "b": true, "c": "z"}}, flow.Invalid, `no option "z"`},
		{flow.Preset{Name: "p", Values: map[string]any{"a": 10, "b": true}}, flow.Invalid, "from 0 to 9"},
	} {
		p := newPanel(c.preset)
		err := flow.ApplyPreset(p, "p")
		if flow.KindOf(err) != c.kind || !strings.Contains(flow.MessageOf(err), c.says) {
			t.Errorf("preset %v: %v, want a %s error saying %s", c.preset.Values, err, c.kind, c.says)
		}
		if !reflect.DeepEqual(p.values, map[string]any{"a": 0, "b": false, "c": "x"}) {
			t.Errorf("preset %v refused, yet the knobs are %v", c.preset.Values, p.values)
		}
	}

	// Set refuses the last knob: the ones set before it are set back.
	p := newPanel(flow.Preset{Name: "p", Label: "Calm", Values: all})
	p.refuse["c"] = true
	err := flow.ApplyPreset(p, "p")
	if flow.KindOf(err) != flow.Invalid || !strings.Contains(flow.MessageOf(err), "C refused") || !strings.Contains(flow.MessageOf(err), "as it was") {
		t.Errorf("refused mid-way: %v", err)
	}
	if !reflect.DeepEqual(p.values, map[string]any{"a": 0, "b": false, "c": "x"}) {
		t.Errorf("after a refused preset the knobs are %v", p.values)
	}

	// What cannot be set back is named.
	p = newPanel(flow.Preset{Name: "p", Label: "Calm", Values: all})
	p.refuse["c"], p.once = true, map[string]bool{"b": true}
	err = flow.ApplyPreset(p, "p")
	if msg := flow.MessageOf(err); flow.KindOf(err) != flow.Invalid || !strings.Contains(msg, "part-way") || !strings.Contains(msg, "B kept") {
		t.Errorf("refused mid-way, B not set back: %v", err)
	}
	if !reflect.DeepEqual(p.values, map[string]any{"a": 0, "b": true, "c": "x"}) {
		t.Errorf("after a refused preset the knobs are %v", p.values)
	}

	if err := flow.ApplyPreset(p, "missing"); flow.KindOf(err) != flow.NotFound {
		t.Errorf("missing preset: %v", err)
	}
}
