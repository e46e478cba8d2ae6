package flow_test

import (
	"fmt"
	"testing"
	"time"

	"flowlab/flow"
)

// A sampled emitter offered far more hops than it should pass keeps about
// its rate, passes whole messages and gives a message the same answer when
// it is judged again later, always passes state changes and outside
// clients' hops, judges a replay as a new message, and draws everything
// again after a quiet spell.
func TestSampledEmitterPassesWholeMessagesAtItsRate(t *testing.T) {
	lab, _ := flow.NewLab("t1")
	passed := map[string]int{}
	var states, outside int
	em := flow.NewEmitter(lab, "box", sinkFunc(func(e flow.Event) {
		switch {
		case e.MsgID == "":
			states++
		case e.Detail.External:
			outside++
		default:
			passed[e.MsgID]++
		}
	})).Sample(1000)

	// A flood for 600 ms: as many messages as one goroutine makes, two
	// hops each, both of a message's hops at its birth.
	type message struct {
		id   string
		born time.Time
	}
	var sent []message
	start := time.Now()
	late := start.Add(300 * time.Millisecond)
	lateHops, extras := 0, 0
	for i := 0; time.Since(start) < 600*time.Millisecond; i++ {
		m := message{fmt.Sprintf("m%d", i), time.Now()}
		em.Emit(flow.Event{Time: m.born, Kind: flow.KindPublish, MsgID: m.id})
		em.Emit(flow.Event{Time: m.born, Kind: flow.KindDeliver, MsgID: m.id})
		if i%5000 == 0 {
			em.Emit(flow.Event{Kind: flow.KindState})
			em.Emit(flow.Event{Kind: flow.KindDeliver, MsgID: "ext-" + m.id, Detail: flow.Detail{External: true}})
			extras++
		}
		sent = append(sent, m)
		if m.born.After(late) {
			lateHops += passed[m.id]
		}
		// Judged again 500 messages later, as a consumer would, across
		// any change of k meanwhile.
		if j := i - 500; j >= 0 {
			if drawn := em.Draws(sent[j].id, sent[j].born); drawn != (passed[sent[j].id] == 2) {
				t.Fatalf("message %s: %d hops passed, and judged again it is drawn: %v", sent[j].id, passed[sent[j].id], drawn)
			}
		}
	}
	k := em.Sampling()
	t.Logf("%d messages in 600 ms; one in %d drawn; %d hops passed in the last 300 ms", len(sent), k, lateHops)
	if len(sent) < 10_000 {
		t.Skipf("only %d messages in 600 ms: not a flood for a rate of 1000", len(sent))
	}
	if k < 4 || k&(k-1) != 0 {
		t.Fatalf("one message in %d drawn in a flood; want a power of two well above one", k)
	}
	for _, m := range sent {
		if passed[m.id] == 1 {
			t.Fatalf("message %s passed without its other hop", m.id)
		}
	}
	if lateHops < 10 || lateHops > 1200 {
		t.Errorf("%d hops passed in 300 ms; want about 300", lateHops)
	}
	if states != extras || outside != extras {
		t.Errorf("%d of %d state changes and %d of %d outside hops passed; want all", states, extras, outside, extras)
	}

	// A message born long ago (a replay) is judged as a new one.
	for i := range 1000 {
		id := fmt.Sprintf("r%d", i)
		if em.Draws(id, time.Now().Add(-time.Hour)) != em.Draws(id, time.Now()) {
			t.Fatalf("replayed message %s judged by the k of its birth an hour ago", id)
		}
	}

	// After a quiet second every message is drawn again, from the first
	// few on.
	time.Sleep(1200 * time.Millisecond)
	for i := range 20 {
		em.Emit(flow.Event{Kind: flow.KindPublish, MsgID: fmt.Sprintf("q%d", i)})
		time.Sleep(5 * time.Millisecond)
	}
	if k := em.Sampling(); k != 1 {
		t.Fatalf("one in %d still drawn after a quiet spell", k)
	}
	for i := 5; i < 20; i++ {
		if id := fmt.Sprintf("q%d", i); passed[id] != 1 {
			t.Fatalf("message %s of a quiet lab was not drawn", id)
		}
	}
}

// An emitter that was not asked to sample passes every hop, at any rate.
func TestEmitterPassesEveryHopUnlessSampled(t *testing.T) {
	lab, _ := flow.NewLab("t1")
	n := 0
	em := flow.NewEmitter(lab, "box", sinkFunc(func(flow.Event) { n++ }))
	t0 := time.Now()
	for i := range 10_000 {
		em.Emit(flow.Event{Time: t0.Add(time.Duration(i)), Kind: flow.KindPublish, MsgID: fmt.Sprint(i)})
	}
	if n != 10_000 || em.Sampling() != 1 || !em.Draws("anything", t0) {
		t.Fatalf("%d of 10000 hops passed, one in %d drawn", n, em.Sampling())
	}
}
