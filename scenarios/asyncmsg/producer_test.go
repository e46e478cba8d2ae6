package asyncmsg_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	if st := l.node("order-service"); st.State != "retrying" || noAnswer(st) <= 0 {
		t.Errorf("half-way through the cut order-service says %+v, want retrying with how long it has had no answer", st)
	}
	time.Sleep(cut - cut/2)
	buffered := l.count("order-service", "buffered")
	mustSet(t, l.s, "restore-path", nil)
	eventually(t, 30*time.Second, "the buffer drained", func() bool { return l.count("order-service", "buffered") == 0 })
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(60 * time.Second)
	led := l.s.Stats().Ledger
	t.Logf("cut %v: %d records buffered at the restore; after it %d produced, %d processed, %d failed, %d refused, %d delivered again",
		cut, buffered, led.Total.Value, l.part("processed"), l.part("failed"), l.part("refused"), l.counter("redeliveries"))
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
// nothing; the rate's events beside the full buffer are refused and counted;
// after the restore the 10,000 buffered order events arrive. The button says it sends order events, not orders: each order
// has three.
func TestSendBurstsAreCappedByTheProducersBuffer(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5,
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	k, err := flow.FindKnob(l.s, "send-1000")
	if err != nil || !strings.Contains(k.Label, "1000 order events") {
		t.Errorf("send-1000 is labelled %q (%v), want it to say it sends 1000 order events", k.Label, err)
	}
	l.waitStable()
	// Events produced before the rate went to 0 must not take room in the
	// buffer the ten presses fill.
	eventually(t, 10*time.Second, "nothing waiting for the broker", func() bool { return l.part("waiting") == 0 })
	base := l.s.Stats().Ledger.Total.Value
	mustSet(t, l.s, "cut-path", nil)
	for range 10 {
		mustSet(t, l.s, "send-1000", nil)
	}
	eventually(t, 10*time.Second, "10,000 records buffered", func() bool { return l.count("order-service", "buffered") == 10_000 })
	err = flow.SetKnob(l.s, "send-1000", nil)
	if flow.KindOf(err) != flow.Unavailable || !strings.Contains(err.Error(), "10000") {
		t.Fatalf("an eleventh press with 10,000 records waiting: got %v, want an unavailable error naming the 10000-record buffer", err)
	}
	t.Logf("the eleventh press: %v", err)
	if total := l.s.Stats().Ledger.Total.Value - base; total != 10_000 {
		t.Errorf("%d order events produced, want the 10,000 of ten presses", total)
	}
	// The rate goes on beside a full buffer: what does not fit is refused
	// and counted.
	mustSet(t, l.s, "rate", 200)
	eventually(t, 10*time.Second, "events refused", func() bool { return l.part("refused") >= 10 })
	mustSet(t, l.s, "rate", 0)
	mustSet(t, l.s, "restore-path", nil)
	eventually(t, 60*time.Second, "the 10,000 buffered events processed", func() bool {
		led := l.s.Stats().Ledger
		if !led.Balanced() {
			t.Fatalf("ledger does not balance: %+v", led)
		}
		return l.part("processed") == base+10_000 && l.part("waiting") == 0
	})
	if f, r, total := l.part("failed"), l.part("refused"), l.s.Stats().Ledger.Total.Value; f != 0 || r != total-base-10_000 {
		t.Errorf("after the restore: failed %d, refused %d of %d produced; want the 10,000 buffered processed and every other one refused", f, r, total)
	}
}

// TestDeletedRecordsAreCountedAndReplayStartsAtTheLogStart deletes the
// records of a slow group's backlog with the broker's own record deletion,
// as retention does: the ledger counts those no member processed as
// expired, not as still in the log, and stays balanced; a replay from
// offset 0 then starts where each log starts now, and says so.
func TestDeletedRecordsAreCountedAndReplayStartsAtTheLogStart(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5,
		"m1-processing": 1000, "m2-processing": 1000, "m3-processing": 1000})
	l.waitStable()
	mustSet(t, l.s, "send-1000", nil)
	eventually(t, 10*time.Second, "1000 order events acknowledged", func() bool { return l.counter("acked") == 1000 })

	cl, err := kgo.NewClient(kgo.SeedBrokers(l.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, l.topic)
	if err != nil {
		t.Fatal(err)
	}
	to := make(kadm.Offsets)
	ends.Each(func(o kadm.ListedOffset) { to.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset}) })
	if resp, err := adm.DeleteRecords(ctx, to); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	eventually(t, 15*time.Second, "nothing left in the log unprocessed", func() bool {
		return l.part("in-log") == 0 && l.part("waiting") == 0
	})
	led := l.s.Stats().Ledger
	t.Logf("after the deletion: %d processed, %d expired", l.part("processed"), l.part("expired"))
	if !led.Balanced() || l.part("expired") < 500 || l.part("processed")+l.part("expired") != 1000 || l.counter("expired") != l.part("expired") {
		t.Errorf("ledger %+v: want the 1000 events processed or expired, most of them expired", led)
	}

	eventually(t, 5*time.Second, "p0 says where its log starts now", func() bool { return l.count("p0", "log-start") > 0 })

	for _, m := range []string{"m1", "m2", "m3"} {
		mustSet(t, l.s, m+"-processing", 0)
	}
	mustSet(t, l.s, "replay-offset", 0)
	// A replay restarts the members in the background and announces where
	// it started once they are back.
	var notes []flow.Event
	eventually(t, 15*time.Second, "the replay saying where each log starts", func() bool {
		notes = l.events.where(func(ev flow.Event) bool {
			return ev.Kind == flow.KindState && ev.Detail.Node == "inventory" && strings.Contains(ev.Detail.Payload, "were deleted")
		})
		return len(notes) > 0
	})
	t.Logf("replay: %s", notes[len(notes)-1].Detail.Payload)
}

// noAnswer is how long order-service says it has had no answer, in seconds.
func noAnswer(st flow.NodeState) float64 {
	v, _ := st.Value("no-answer-s")
	s, _ := v.(float64)
	return s
}
