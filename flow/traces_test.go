package flow_test

import (
	"fmt"
	"runtime"
	"testing"

	"flowlab/flow"
)

// A lab's traces cost memory for the hops it has had, not for those it may
// have: a hundred sandboxes nobody uses must not hold a gigabyte of empty
// rings. Once full, a ring keeps only its newest hops.
func TestTracesGrowWithTheirHops(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tr := flow.NewTraces(1 << 15)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("empty traces of 32768 hops took %d KiB", got>>10)
	}
	const size = 1 << 10
	tr = flow.NewTraces(size)
	for i := range 3 * size {
		tr.Add(&flow.Event{MsgID: fmt.Sprint("m", i%(size+size/2)), Seq: uint64(i)})
	}
	// The last size hops are kept, whatever went before them.
	for i := 2 * size; i < 3*size; i++ {
		id := fmt.Sprint("m", i%(size+size/2))
		h, ok := tr.Get(id)
		if !ok || h[len(h)-1].Seq != uint64(i) {
			t.Fatalf("%s: %v, want its hop %d kept", id, h, i)
		}
	}
	if h, ok := tr.Get(fmt.Sprint("m", (2*size-1)%(size+size/2))); ok {
		t.Fatalf("a hop older than the last %d still kept: %v", size, h)
	}
}

// A sandbox keeps a quarter of the default lab's hops: 100 sandboxes' full
// rings must fit a classroom server's memory. Past its size, its oldest hop
// is gone.
func TestSandboxTracesKeepAQuarter(t *testing.T) {
	def, err := flow.NewLabIn("", flow.DefaultLab)
	if err != nil {
		t.Fatal(err)
	}
	box, err := flow.NewSandboxIn("", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if def.Traces.Size() != 32768 || box.Traces.Size() != 8192 {
		t.Fatalf("trace sizes: default lab %d, sandbox %d; want 32768 and 8192", def.Traces.Size(), box.Traces.Size())
	}
	for i := range 8192 + 8 {
		box.Traces.Add(&flow.Event{MsgID: fmt.Sprint("m", i), Seq: uint64(i)})
	}
	if _, ok := box.Traces.Get("m7"); ok {
		t.Fatal("the sandbox still keeps a hop 8,192 hops old")
	}
	if _, ok := box.Traces.Get("m8"); !ok {
		t.Fatal("the sandbox lost one of its last 8,192 hops")
	}
	if _, err := flow.NewSandboxIn("", "Bad"); flow.KindOf(err) != flow.Invalid {
		t.Fatalf("sandbox id Bad: %v, want Invalid", err)
	}
}
