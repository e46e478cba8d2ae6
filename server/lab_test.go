package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"flowlab/flow"
)

// board is a scenario with one knob of each type that records every change.
type board struct{ changes []string }

func (b *board) Name() string    { return "board" }
func (b *board) Title() string   { return "Board" }
func (b *board) Summary() string { return "" }
func (b *board) Knobs() []flow.Knob {
	return []flow.Knob{
		{Name: "rate", Label: "Rate", Type: flow.IntKnob, Min: 0, Max: 100},
		{Name: "up", Label: "Up", Type: flow.BoolKnob},
		{Name: "retry", Label: "Retry", Type: flow.ChoiceKnob, Choices: []flow.Choice{{Value: "none"}, {Value: "fixed"}}},
		{Name: "crash", Label: "Crash", Type: flow.ActionKnob},
	}
}
func (b *board) Presets() []flow.Preset {
	return []flow.Preset{{Name: "calm", Values: map[string]any{"rate": 1, "retry": "fixed"}}}
}
func (b *board) Set(knob string, v any) error {
	b.changes = append(b.changes, knob+"="+strings.Trim(jsonText(v), `"`))
	return nil
}
func (b *board) View() flow.View               { return flow.View{} }
func (b *board) Stats() flow.Stats             { return flow.Stats{} }
func (b *board) Run(ctx context.Context) error { return nil }

func jsonText(v any) string {
	b, _ := jsonv2.Marshal(v)
	return string(b)
}

// nearMisses are messages that look like commands and are not; each must be
// refused and change nothing.
var nearMisses = []string{
	`{"id":1,"op":"set","knob":"rate","value":0}]`,
	`{"id":1,"op":"set","knob":"rate","value":0}}`,
	`{"id":1,"op":"set","knob":"rate","value":0} {"id":2}`,
	`{"id":1,"op":"set","KNOB":"rate","value":0}`,
	`{"id":1,"op":"set","Knob":"rate","value":0}`,
	"{\"id\":1,\"op\":\"set\",\"\u212anob\":\"rate\",\"value\":0}",
	`{"id":1,"op":"set","\u212anob":"rate","value":0}`,
	`{"id":1,"op":"set","knob":"up","knob":"rate","value":0}`,
	`{"id":1,"op":"set","knob":"rate","value":5,"value":0}`,
	`{"id":1,"op":"set","knob":"rate","value":1e-400}`,
	`{"id":1,"op":"set","knob":"rate","value":1e1}`,
	`{"id":1,"op":"set","knob":"rate","value":5.0}`,
	`{"id":1,"op":"set","knob":"rate","value":99999999999999999999}`,
	`{"id":1,"op":"set","knob":"rate","value":"5"}`,
	`{"id":1.5,"op":"set","knob":"rate","value":5}`,
	`{"id":null,"op":"set","knob":"rate","value":5}`,
	`{"id":1,"op":null,"knob":"rate","value":5}`,
	`{"id":1,"op":"set","knob":"rate","value":5,"preset":"calm"}`,
	`{"id":1,"op":"preset","preset":"calm","knob":"rate"}`,
	`{"id":1,"op":"preset","preset":"calm","value":1}`,
	`{"id":1,"op":"SET","knob":"rate","value":5}`,
	`{"id":1,"op":"set","knob":"Rate","value":5}`,
	`{"id":1,"op":"set","knob":"rate","value":5,"lab":"x"}`,
	"{\"id\":1,\"op\":\"set\",\"knob\":\"retry\",\"value\":\"fixed\xff\"}",
	`[{"id":1,"op":"set","knob":"rate","value":5}]`,
	`"set"`,
	`{"id":1,"op":`,
	``,
}

// commands are canonical commands; each must be carried out.
var commands = []struct{ msg, change string }{
	{`{"id":1,"op":"set","knob":"rate","value":0}`, "rate=0"},
	{`{"id":2,"op":"set","knob":"rate","value":100}`, "rate=100"},
	{` { "value" : -0 , "knob" : "rate" , "op" : "set" , "id" : 3 } `, "rate=0"},
	{`{"id":4,"op":"set","knob":"up","value":true}`, "up=true"},
	{`{"id":5,"op":"set","knob":"retry","value":"fixed"}`, "retry=fixed"},
	{`{"id":6,"op":"set","knob":"crash","value":null}`, "crash=null"},
	{`{"id":7,"op":"set","knob":"crash"}`, "crash=null"},
	{`{"id":8,"op":"set","\u006bnob":"rate","value":7}`, "rate=7"}, // an escape is the same name
	{`{"id":9,"op":"preset","preset":"calm"}`, "rate=1 retry=fixed"},
}

func TestNearMissCommandsChangeNothing(t *testing.T) {
	for _, msg := range nearMisses {
		b := &board{}
		r := (&scenarioRun{Scenario: b}).handle([]byte(msg), true).(reply)
		if r.OK || r.Error == "" || len(b.changes) > 0 {
			t.Errorf("%s: reply %+v, changes %v; want an error reply and no change", msg, r, b.changes)
		}
	}
	for _, c := range commands {
		b := &board{}
		r := (&scenarioRun{Scenario: b}).handle([]byte(c.msg), true).(reply)
		if !r.OK || strings.Join(b.changes, " ") != c.change {
			t.Errorf("%s: reply %+v, changes %v; want %s", c.msg, r, b.changes, c.change)
		}
	}
}

// FuzzCommand: whatever a browser sends, the lab changes only for a canonical
// command, and then only as that command says. The oracle is an independent
// strict decoder (go-json-experiment/json rejects duplicate and unknown
// names, matches names exactly, and wants UTF-8 and nothing after the value).
func FuzzCommand(f *testing.F) {
	for _, m := range nearMisses {
		f.Add(m)
	}
	for _, c := range commands {
		f.Add(c.msg)
	}
	plainInt := regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	f.Fuzz(func(t *testing.T, msg string) {
		b := &board{}
		r := (&scenarioRun{Scenario: b}).handle([]byte(msg), true).(reply)
		if !r.OK {
			if len(b.changes) > 0 {
				t.Fatalf("%q refused yet changed %v", msg, b.changes)
			}
			return
		}
		var c struct {
			ID     int            `json:"id"`
			Op     string         `json:"op"`
			Knob   string         `json:"knob"`
			Value  jsontext.Value `json:"value"`
			Preset string         `json:"preset"`
		}
		if err := jsonv2.Unmarshal([]byte(msg), &c, jsonv2.RejectUnknownMembers(true)); err != nil {
			t.Fatalf("%q carried out (%v), but it is not a canonical command: %v", msg, b.changes, err)
		}
		if r.ID != c.ID {
			t.Fatalf("%q answered as id %d", msg, r.ID)
		}
		switch c.Op {
		case "set":
			var v any
			if len(c.Value) > 0 {
				jsonv2.Unmarshal(c.Value, &v)
			}
			want := c.Knob + "=" + strings.Trim(jsonText(v), `"`)
			if c.Knob == "rate" {
				if !plainInt.MatchString(string(c.Value)) {
					t.Fatalf("%q set rate from %s, not a plain integer", msg, c.Value)
				}
				n, _ := strconv.Atoi(string(c.Value))
				want = "rate=" + strconv.Itoa(n)
			}
			if len(b.changes) != 1 || b.changes[0] != want {
				t.Fatalf("%q changed %v, want %s", msg, b.changes, want)
			}
		case "preset":
			if c.Preset != "calm" || len(c.Value) > 0 || c.Knob != "" {
				t.Fatalf("%q applied a preset it does not name alone", msg)
			}
		default:
			t.Fatalf("%q carried out op %q", msg, c.Op)
		}
	})
}

// shifting is a scenario whose diagram changes in place, as a consumer
// group's assignment does.
type shifting struct {
	board
	nodes []flow.Node
}

func (s *shifting) View() flow.View { return flow.View{Nodes: s.nodes} }

// A frame carries the topology only when it has changed since the last
// frame, even when the scenario changed it in the slice it gave before.
func TestFrameCarriesTheViewOnlyWhenItChanged(t *testing.T) {
	lab, err := flow.NewLab("v1")
	if err != nil {
		t.Fatal(err)
	}
	sc := &shifting{nodes: []flow.Node{{ID: "p0", Label: "partition 0", Note: "consumer-1"}}}
	l := &labRun{lab: lab}
	a := &App{brokers: &brokerWatch{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := l.add("board", "", a, func(*flow.Emitter) (flow.Scenario, error) { return sc, nil }); err != nil {
		t.Fatal(err)
	}
	s := l.scenarios[0]
	view := func() *flow.View { return s.frameStats().(frameStatsMsg).View }
	if v := view(); v != nil {
		t.Fatalf("first frame carries the view %+v: the snapshot before it has it", v)
	}
	if v := view(); v != nil {
		t.Fatalf("an unchanged view sent again: %+v", v)
	}
	sc.nodes[0].Note = "consumer-2"
	if v := view(); v == nil || v.Nodes[0].Note != "consumer-2" {
		t.Fatalf("after the assignment moved: view %+v, want partition 0 at consumer-2", v)
	}
	if v := view(); v != nil {
		t.Fatalf("the moved view sent twice: %+v", v)
	}
	sc.nodes = append(sc.nodes, flow.Node{ID: "p1"})
	if v := view(); v == nil || len(v.Nodes) != 2 {
		t.Fatalf("after a partition was added: view %+v, want 2 nodes", v)
	}
}
