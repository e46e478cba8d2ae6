package workqueue_test

import (
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// holdFive leaves worker-1 alone, slow, holding its prefetch of 5 of 100
// jobs unacked, every other worker stopped.
func holdFive(tb testing.TB, l *lab, processing int) {
	tb.Helper()
	rabbittest.MustSet(tb, l, "emails.processing", processing)
	rabbittest.WaitFor(tb, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(tb, l, "worker-2.stop", nil)
	rabbittest.MustSet(tb, l, "worker-3.stop", nil)
	rabbittest.WaitFor(tb, l, 5*time.Second, "two workers stopped", func(st flow.Stats) bool {
		return st.Nodes["worker-2"].State == "stopped" && st.Nodes["worker-3"].State == "stopped"
	})
	rabbittest.MustSet(tb, l, "order-service.send-100", nil)
	rabbittest.WaitFor(tb, l, 10*time.Second, "worker-1 holding 5", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "published") == 100 && factIs(st, "worker-1", "unacked", int64(5))
	})
}

// restartAll brings every worker back at full speed and waits for all 100
// emails to be sent.
func restartAll(tb testing.TB, l *lab) flow.Stats {
	tb.Helper()
	rabbittest.MustSet(tb, l, "emails.processing", 0)
	for _, w := range workers {
		rabbittest.MustSet(tb, l, w+".restart", nil)
	}
	return rabbittest.WaitFor(tb, l, 10*time.Second, "all 100 sent", func(st flow.Stats) bool { return rabbittest.Counter(st, "acked") == 100 })
}

// wantDuplicates checks the redeliveries and the duplicates, in the counters
// and in the ledger, where duplicates are counted apart.
func wantDuplicates(tb testing.TB, st flow.Stats, redeliveries, duplicates int64) {
	tb.Helper()
	if got := rabbittest.Counter(st, "redeliveries"); got != redeliveries {
		tb.Errorf("redeliveries %d, want %d", got, redeliveries)
	}
	if got := rabbittest.Counter(st, "duplicates"); got != duplicates {
		tb.Errorf("duplicates %d, want %d", got, duplicates)
	}
	if d := st.Ledger.Duplicates; d == nil || d.Name != "duplicates" || d.Value != duplicates {
		tb.Errorf("ledger's duplicates apart: %+v, want %d", d, duplicates)
	}
	rabbittest.MustBalance(tb, st)
}

// A clean stop hands back the 5 jobs worker-1 held, none of them sent: they
// are redelivered, and no email goes out twice.
func TestStoppedWorkerRedeliversWithoutDuplicates(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	holdFive(t, l, 5000)
	rabbittest.MustSet(t, l, "worker-1.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "worker-1 stopped", func(st flow.Stats) bool { return st.Nodes["worker-1"].State == "stopped" })
	st := restartAll(t, l)
	wantDuplicates(t, st, 5, 0)
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindAck && e.Detail.Duplicate }); n != 0 {
		t.Errorf("%d emails flagged sent twice", n)
	}
}

// A worker that crashes after an email went out and before its ack: the
// broker hands the job out again, and the email goes out a second time: one
// duplicate, beside the 5 redeliveries.
func TestCrashAfterSendingSendsTheEmailTwice(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	holdFive(t, l, 300)
	rabbittest.MustSet(t, l, "worker-1.crash-after-send", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "worker-1 crashed", func(st flow.Stats) bool { return st.Nodes["worker-1"].State == "crashed" })
	st := restartAll(t, l)
	wantDuplicates(t, st, 5, 1)
	twice := l.sink.Events()
	var id string
	for _, e := range twice {
		if e.Kind == flow.KindAck && e.Detail.Duplicate {
			id = e.MsgID
		}
	}
	job, ok := l.Job(id)
	if !ok || job.Sent != 2 || job.State != "acked" {
		t.Errorf("the job sent twice, %q: %+v", id, job)
	}
}
