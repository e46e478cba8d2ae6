package asyncmsg_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

// TestReliableProducerKeepsRecordsThroughALongCut cuts the path for 12 s,
// longer than the 10 s delivery timeout the producer once had, with the
// reliable preset at 100 events/s: the records wait in the producer's buffer,
// the page says for how long, and after the restore every one is delivered
// and processed, none failed or refused. FLOWLAB_CUT_SECONDS lengthens the
// cut (e.g. 60) to measure a long outage by hand.
func TestReliableProducerKeepsRecordsThroughALongCut(t *testing.T) {
	cut := 12 * time.Second
	if v := os.Getenv("FLOWLAB_CUT_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("FLOWLAB_CUT_SECONDS=%q: %v", v, err)
		}
		cut = time.Duration(n) * time.Second
	}
	l := startLab(t, map[string]any{"rate": 100, "m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	if err := flow.ApplyPreset(l.s, "reliable"); err != nil {
		t.Fatal(err)
	}
	l.waitStable()
	eventually(t, 15*time.Second, "some events processed", func() bool { return l.part("processed") >= 50 })

	mustSet(t, l.s, "cut-path", nil)
	time.Sleep(cut / 2)
	if st := l.node("order-service"); st.State != "retrying" || !slices.ContainsFunc(st.Badges, func(b string) bool {
		return strings.HasPrefix(b, "no answer for ")
	}) {
		t.Errorf("half-way through the cut order-service says %+v, want retrying with how long it has had no answer", st)
	}
	time.Sleep(cut - cut/2)
	buffered := l.badge("order-service", "buffered")
	mustSet(t, l.s, "restore-path", nil)
	eventually(t, 30*time.Second, "the buffer drained", func() bool { return l.badge("order-service", "buffered") == 0 })
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(60 * time.Second)
	led := l.s.Stats().Ledger
	t.Logf("cut %v: %d records buffered at the restore; after it %d produced, %d processed, %d failed, %d refused, %d delivered again",
		cut, buffered, led.Total.Value, l.part("processed"), l.part("failed"), l.part("refused"), l.counter("redelivered"))
	if f, r := l.part("failed"), l.part("refused"); f != 0 || r != 0 {
		t.Errorf("through a %v cut %d events failed and %d were refused; want none", cut, f, r)
	}
	if buffered < int64(cut.Seconds())*100/2 {
		t.Errorf("%d records buffered at the restore after %v at 100/s", buffered, cut)
	}
}

// TestSendBurstsAreCappedByTheProducersBuffer presses send-1000 while the
// path is cut, so nothing drains: ten presses fill the producer's 10,000
// records, the eleventh is refused with a reply that says why and changes
// nothing, and after the restore all 10,000 order events arrive, none
// refused. The button says it sends order events, not orders: each order
// has three.
func TestSendBurstsAreCappedByTheProducersBuffer(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5,
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	k, err := flow.FindKnob(l.s, "send-1000")
	if err != nil || !strings.Contains(k.Label, "1000 order events") {
		t.Errorf("send-1000 is labelled %q (%v), want it to say it sends 1000 order events", k.Label, err)
	}
	l.waitStable()
	mustSet(t, l.s, "cut-path", nil)
	for range 10 {
		mustSet(t, l.s, "send-1000", nil)
	}
	eventually(t, 10*time.Second, "10,000 records buffered", func() bool { return l.badge("order-service", "buffered") == 10_000 })
	err = flow.SetKnob(l.s, "send-1000", nil)
	if flow.KindOf(err) != flow.Unavailable || !strings.Contains(err.Error(), "10000") {
		t.Fatalf("an eleventh press with 10,000 records waiting: got %v, want an unavailable error naming the 10000-record buffer", err)
	}
	t.Logf("the eleventh press: %v", err)
	if total := l.s.Stats().Ledger.Total.Value; total != 10_000 {
		t.Errorf("%d order events produced, want the 10,000 of ten presses", total)
	}
	mustSet(t, l.s, "restore-path", nil)
	l.waitAllProcessed(60 * time.Second)
	if f, r := l.part("failed"), l.part("refused"); f != 0 || r != 0 || l.s.Stats().Ledger.Total.Value != 10_000 {
		t.Errorf("after the restore: failed %d, refused %d, ledger %+v; want 10,000 processed", f, r, l.s.Stats().Ledger)
	}
}
