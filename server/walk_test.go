package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"flowlab/flow"
	"flowlab/walk"
	"flowlab/walks"
)

// Every walkthrough flowlab ships loads against the knobs and presets the
// scenarios really declare, as the server loads them at start.
func TestEveryShippedWalkthroughLoads(t *testing.T) {
	l := mustOpenLab(t)
	a := &App{labs: map[string]*labRun{l.lab.ID: l}, home: l.lab.ID}
	if err := a.loadWalks(walks.Files); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(walks.Files, "*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || len(a.walks) != len(files) {
		t.Fatalf("%d walkthroughs loaded from %d files %v", len(a.walks), len(files), files)
	}
	for _, f := range files {
		w, ok := a.walks[strings.TrimSuffix(f, ".md")]
		if !ok {
			t.Errorf("%s loaded under another id", f)
			continue
		}
		if _, ok := l.scenario(w.Pattern); !ok {
			t.Errorf("%s is for %q, which no lab has", f, w.Pattern)
		}
	}
}

// A walkthrough naming a knob its pattern lacks stops flowlab from starting,
// with the file and line of the mistake.
func TestBrokenWalkthroughRefusesToStart(t *testing.T) {
	good, err := fs.ReadFile(walks.Files, "exclusive-vs-durable.md")
	if err != nil {
		t.Fatal(err)
	}
	// The first act's first knob, misspelt.
	broken := strings.Replace(string(good), "  - set: inventory.stop\n", "  - set: inventory.stopp\n", 1)
	if broken == string(good) {
		t.Fatal("the shipped walkthrough no longer stops inventory first: pick another line to break")
	}
	line := 1 + strings.Count(broken[:strings.Index(broken, "inventory.stopp")], "\n")
	cfg, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-product-addr", "127.0.0.1:0", "-kafka-addr", "127.0.0.1:0", "-lab", testLab()},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.walkFiles = fstest.MapFS{"good.md": {Data: good}, "broken.md": {Data: []byte(broken)}}
	a, err := open(cfg, io.Discard, io.Discard)
	if err == nil {
		a.labs[a.home].close()
		a.close()
		t.Fatal("flowlab started with a broken walkthrough")
	}
	want := fmt.Sprintf("broken.md:%d:", line)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "inventory.stopp") || strings.Contains(err.Error(), "good.md") {
		t.Fatalf("the error %q should name %s and the unknown knob, and only the broken file", err, want)
	}
}

// A walkthrough's commands go the knobs' way: validated, refused whole
// when bad, and announced to every browser as made by a walkthrough.
func TestWalkCommandsAreValidatedAndAnnounced(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	l, s := runningScenario(t, a, url, "event-driven")
	ws := dialLab(t, "ws"+strings.TrimPrefix(url, "http")+"/event-driven/ws")
	defer ws.Close()
	lab := walkLab{a: a, lab: l, s: s}
	ctx := context.Background()

	if err := lab.Command(ctx, walk.Command{Set: "order-service.rate", Value: json.RawMessage("100000")}); flow.KindOf(err) != flow.Invalid {
		t.Fatalf("rate 100000: %v, want Invalid", err)
	}
	if err := lab.Command(ctx, walk.Command{Set: "order-service.rate", Value: json.RawMessage("7")}); err != nil {
		t.Fatal(err)
	}
	var knobs struct {
		Type  string      `json:"type"`
		By    string      `json:"by"`
		Knobs []flow.Knob `json:"knobs"`
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for knobs.Type != "knobs" {
		if err := ws.ReadJSON(&knobs); err != nil {
			t.Fatal(err)
		}
	}
	if knobs.By != byWalk || len(knobs.Knobs) != 1 || knobs.Knobs[0].Name != "order-service.rate" || knobs.Knobs[0].Value != float64(7) {
		t.Fatalf("announced %+v, want only order-service.rate = 7 by %q", knobs, byWalk)
	}
	if err := lab.Command(ctx, walk.Command{Preset: "nosuch"}); flow.KindOf(err) != flow.NotFound {
		t.Fatalf("preset nosuch: %v, want NotFound", err)
	}
	if v := knobValues(lab.Knobs())["order-service.rate"]; v != 7 {
		t.Fatalf("after refused commands the rate is %v, want 7", v)
	}
}

// In a walkthrough's sandbox the tap counts every event of each kind the
// scenario emits, as many as its own counters say happened, even in a
// burst a sampling emitter would thin out; and starts over with it.
func TestWalkLabCountsEventsExactly(t *testing.T) {
	a, origin := startWalkServer(t)
	l, _ := a.lab(mustStartWalk(t, origin).lab)
	s, _ := l.scenario("event-driven")
	lab := walkLab{a: a, lab: l, s: s}
	ctx := context.Background()
	if err := lab.Command(ctx, walk.Command{Set: "order-service.rate", Value: json.RawMessage("0")}); err != nil {
		t.Fatal(err)
	}
	// Whatever was on its way when the load stopped has been published.
	var before int64
	for stable, last := 0, int64(-1); stable < 5; time.Sleep(100 * time.Millisecond) {
		before = statsCounter(lab.Stats(), "published")
		if before == last {
			stable++
		} else {
			stable, last = 0, before
		}
	}
	if got := lab.EventCounts()[flow.KindPublish]; got != before {
		t.Fatalf("%d publish events counted for %d published", got, before)
	}
	if err := lab.Command(ctx, walk.Command{Set: "order-service.send-100"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "100 more published", func() bool { return statsCounter(lab.Stats(), "published") == before+100 })
	// A publish event follows its count by a moment.
	waitFor(t, "as many publish events", func() bool { return lab.EventCounts()[flow.KindPublish] >= before+100 })
	time.Sleep(200 * time.Millisecond)
	if got := lab.EventCounts()[flow.KindPublish]; got != before+100 {
		t.Fatalf("%d publish events counted for %d published", got, before+100)
	}
	if err := lab.Command(ctx, walk.Command{Reset: true}); err != nil {
		t.Fatal(err)
	}
	if got := lab.EventCounts()[flow.KindPublish]; got > statsCounter(lab.Stats(), "published") {
		t.Fatalf("after a reset %d publish events are counted for %d published", got, statsCounter(lab.Stats(), "published"))
	}
}

// Counting never loses an event to a race, whatever emits at once.
func TestEventTapCountsConcurrentEmits(t *testing.T) {
	var passed sync.Map
	tap := &eventTap{next: sinkFunc(func(e flow.Event) { passed.Store(e.MsgID, true) })}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				kind := flow.KindPublish
				if i%4 == 0 {
					kind = flow.KindAck
				}
				tap.Emit(flow.Event{Kind: kind, MsgID: fmt.Sprint(g*1000 + i)})
			}
		})
	}
	wg.Wait()
	if c := tap.counts(); c[flow.KindPublish] != 6000 || c[flow.KindAck] != 2000 || len(c) != 2 {
		t.Fatalf("counted %v, want 6000 publish and 2000 ack", c)
	}
	n := 0
	passed.Range(func(any, any) bool { n++; return true })
	if n != 8000 {
		t.Fatalf("%d events passed on, want 8000", n)
	}
	tap.clear()
	if c := tap.counts(); c[flow.KindPublish] != 0 || c[flow.KindAck] != 0 {
		t.Fatalf("after clear: %v", c)
	}
}

type sinkFunc func(flow.Event)

func (f sinkFunc) Emit(e flow.Event) { f(e) }

func statsCounter(st flow.Stats, name string) int64 {
	for _, c := range st.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	return -1
}

// runningScenario waits for the scenario name of the lab at url to run, as
// the server starts its default lab's.
func runningScenario(t *testing.T, a *App, url, name string) (*labRun, *scenarioRun) {
	t.Helper()
	l, _ := a.lab(url[strings.LastIndex(url, "/")+1:])
	s, _ := l.scenario(name)
	waitFor(t, name+" running", func() bool {
		l.life.Lock()
		defer l.life.Unlock()
		return s.stop != nil
	})
	return l, s
}
