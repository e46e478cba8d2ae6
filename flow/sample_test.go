package flow_test

import (
	"fmt"
	"testing"
	"time"

	"flowlab/flow"
)

// A sampled emitter offered far more hops than it should pass keeps about
// its rate, passes whole messages, always passes state changes and outside
// clients' hops, and draws everything again after a quiet spell.
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

	// Two seconds of 50,000 messages a second, two hops each: 100,000 hops
	// a second offered to an emitter that should pass about 1000.
	t0 := time.Now()
	const messages = 100_000
	var settled []string // messages of the second second
	for i := range messages {
		at := t0.Add(time.Duration(i) * 20 * time.Microsecond)
		id := fmt.Sprintf("m%d", i)
		em.Emit(flow.Event{Time: at, Kind: flow.KindPublish, MsgID: id})
		em.Emit(flow.Event{Time: at, Kind: flow.KindDeliver, MsgID: id})
		if i%5000 == 0 {
			em.Emit(flow.Event{Time: at, Kind: flow.KindState})
			em.Emit(flow.Event{Time: at, Kind: flow.KindDeliver, MsgID: "ext-" + id, Detail: flow.Detail{External: true}})
		}
		if i >= messages/2 {
			settled = append(settled, id)
		}
		// Judged again 10 ms later, as a consumer would, across any
		// change of k, a message gets the answer it got when it was born:
		// no journey is cut by a change of k.
		if j := i - 500; j >= 0 {
			id, born := fmt.Sprintf("m%d", j), t0.Add(time.Duration(j)*20*time.Microsecond)
			if drawn := em.Draws(id, born); drawn != (passed[id] == 2) {
				t.Fatalf("message %s: %d hops passed, and judged again it is drawn: %v", id, passed[id], drawn)
			}
		}
	}
	k := em.Sampling()
	if k < 32 || k > 256 || k&(k-1) != 0 {
		t.Fatalf("one message in %d drawn at 100 times the rate; want a power of two near 100", k)
	}
	// A message born long before (a replay) is judged as a new one.
	end := t0.Add(messages * 20 * time.Microsecond)
	for i := range 1000 {
		id := fmt.Sprintf("r%d", i)
		if em.Draws(id, t0.Add(-time.Hour)) != em.Draws(id, end) {
			t.Fatalf("a replayed message %s is judged by the k of its birth an hour ago", id)
		}
	}
	hops := 0
	for _, id := range settled {
		n := passed[id]
		hops += n
		if n == 1 {
			t.Fatalf("message %s passed without its other hop", id)
		}
	}
	if hops < 250 || hops > 4000 {
		t.Errorf("%d hops passed in the second second; want about 1000", hops)
	}
	if states != messages/5000 || outside != messages/5000 {
		t.Errorf("%d of %d state changes and %d of %d outside hops passed; want all", states, messages/5000, outside, messages/5000)
	}

	// After a quiet spell, at 20 messages a second, k comes down within a
	// second and every message is drawn again.
	later := t0.Add(12 * time.Second)
	for i := range 40 {
		em.Emit(flow.Event{Time: later.Add(time.Duration(i) * 50 * time.Millisecond), Kind: flow.KindPublish, MsgID: fmt.Sprintf("q%d", i)})
	}
	if em.Sampling() != 1 {
		t.Fatalf("one in %d still drawn two seconds into a quiet spell", em.Sampling())
	}
	for i := 20; i < 40; i++ {
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
