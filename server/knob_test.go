package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"flowlab/flow"
)

// mustOpenLab wires a lab of every scenario without running it: knobs can be
// set, nothing is sent. Cleanup frees what the scenarios took.
func mustOpenLab(t *testing.T) *labRun {
	t.Helper()
	a := &App{
		cfg:     Config{ProductAddr: "127.0.0.1:0", AMQPURL: defaultAMQPURL()},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		brokers: &brokerWatch{kafkaAddrs: []string{"127.0.0.1:1"}},
	}
	l, err := a.openLab("k"+strings.ToLower(rand.Text()[:10]), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// Every whole-number knob of every scenario is checked against its own
// declaration and nothing else: just outside its range it is refused with
// that range in the message, and its ends are taken.
func TestEveryKnobRangeIsItsDeclaration(t *testing.T) {
	l := mustOpenLab(t)
	for _, s := range l.scenarios {
		for _, k := range s.Knobs() {
			if k.Type != flow.IntKnob {
				continue
			}
			want := fmt.Sprintf("from %d to %d", k.Min, k.Max)
			for _, n := range []int{k.Min - 1, k.Max + 1} {
				if n == 0 && k.Off != "" {
					continue // 0 means Off, and is taken
				}
				err := flow.SetKnob(s, k.Name, json.RawMessage(fmt.Sprint(n)))
				if flow.KindOf(err) != flow.Invalid || !strings.Contains(flow.MessageOf(err), want) {
					t.Errorf("%s %s = %d: %v, want Invalid saying %q", s.Name(), k.Name, n, err, want)
				}
			}
			for _, n := range []int{k.Min, k.Max} {
				// A replay needs the running services: unavailable, not refused.
				err := flow.SetKnob(s, k.Name, json.RawMessage(fmt.Sprint(n)))
				if err != nil && flow.KindOf(err) != flow.Unavailable {
					t.Errorf("%s %s = %d refused: %v", s.Name(), k.Name, n, err)
				}
			}
		}
	}
}

// The server opens a sandbox with a sandbox's trace rings and its own lab
// with the default lab's.
func TestSandboxGetsSandboxTraces(t *testing.T) {
	if got := mustOpenLab(t).lab.Traces.Size(); got != flow.SandboxTraceHops {
		t.Fatalf("a sandbox keeps %d hops, want %d", got, flow.SandboxTraceHops)
	}
	a := &App{
		cfg:     Config{Lab: "h" + strings.ToLower(rand.Text()[:10]), ProductAddr: "127.0.0.1:0", AMQPURL: defaultAMQPURL()},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		brokers: &brokerWatch{kafkaAddrs: []string{"127.0.0.1:1"}},
	}
	home, err := a.openLab(a.cfg.Lab, false)
	if err != nil {
		t.Fatal(err)
	}
	defer home.close()
	if got := home.lab.Traces.Size(); got != flow.LabTraceHops {
		t.Fatalf("the server's own lab keeps %d hops, want %d", got, flow.LabTraceHops)
	}
}
