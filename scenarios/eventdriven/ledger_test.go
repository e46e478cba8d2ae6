package eventdriven_test

import (
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// The article's consumer (exclusive temporary queue, auto-ack) is down while
// 100 orders go out: its queue died with it, so all 100 copies are lost, and
// only its copies.
func TestExclusiveQueueLosesWhatIsPublishedWhileItsConsumerIsStopped(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))

	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool {
		return st.Nodes["inventory"].State == "stopped" && st.Nodes["queue-inventory"].State == "absent"
	})
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "email and analytics to ack 100", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "email.acked") == 100 && rabbittest.Counter(st, "analytics.acked") == 100
	})

	if got := rabbittest.Counter(st, "published"); got != 100 {
		t.Fatalf("published %d, want 100", got)
	}
	for name, want := range map[string]int64{
		"inventory.lost": 100, "inventory.acked": 0, "inventory.in-flight": 0,
		"email.lost": 0, "analytics.lost": 0, "email.in-flight": 0, "analytics.in-flight": 0,
	} {
		if got := rabbittest.Counter(st, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	mustBalance(t, st)
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindDrop && e.To == "queue-inventory" }); n != 100 {
		t.Errorf("%d drop events at inventory's queue, want 100", n)
	}

	// Restarted, it gets nothing back: the copies are gone for good.
	rabbittest.MustSet(t, l, "inventory.restart", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "inventory up again", rabbittest.AllUp("inventory"))
	time.Sleep(300 * time.Millisecond)
	st = l.Stats()
	if got := rabbittest.Counter(st, "inventory.acked"); got != 0 {
		t.Errorf("after restart inventory acked %d, want 0", got)
	}
	mustBalance(t, st)
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}

// The same outage with a durable queue and manual ack loses nothing: the 100
// copies wait in the queue (the broker says so) and arrive after restart.
func TestDurableQueueKeepsWhatIsPublishedWhileItsConsumerIsStopped(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)

	rabbittest.MustSet(t, l, "inventory.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory stopped", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "stopped" })
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 confirmed, acked by email and analytics, waiting in inventory's queue", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "confirmed") == 100 && rabbittest.Counter(st, "email.acked") == 100 && rabbittest.Counter(st, "analytics.acked") == 100 &&
			count(st.Nodes["queue-inventory"], "ready") == 100
	})
	if got := rabbittest.Counter(st, "inventory.in-flight"); got != 100 {
		t.Fatalf("inventory in flight %d, want 100", got)
	}
	mustBalance(t, st)

	rabbittest.MustSet(t, l, "inventory.restart", nil)
	st = rabbittest.WaitFor(t, l, 10*time.Second, "inventory to ack all 100", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "inventory.acked") == 100
	})
	for _, name := range []string{"lost", "inventory.lost", "inventory.in-flight", "inventory.redeliveries", "returned"} {
		got := part(st, "lost")
		if name != "lost" {
			got = rabbittest.Counter(st, name)
		}
		if got != 0 {
			t.Errorf("%s = %d, want 0", name, got)
		}
	}
	mustBalance(t, st)
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}

// A crash mid-processing with manual ack: what inventory held unacked comes
// back, flagged and counted as redelivered, and nothing is lost.
func TestCrashWithManualAckRedelivers(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "inventory.prefetch", 10)
	rabbittest.MustSet(t, l, "inventory.processing", 5000)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", func(st flow.Stats) bool {
		return reliableUp(st) && count(st.Nodes["inventory"], "prefetch") == 10
	})

	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "all 100 confirmed and inventory holding its 10 prefetched", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "confirmed") == 100 && count(st.Nodes["queue-inventory"], "unacked") == 10
	})
	rabbittest.MustSet(t, l, "inventory.crash", nil)
	st := rabbittest.WaitFor(t, l, 5*time.Second, "inventory crashed", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "crashed" })
	if got := rabbittest.Counter(st, "inventory.in-flight"); got != 100 {
		t.Fatalf("after the crash inventory in flight %d, want 100:\n%s", got, rabbittest.Describe(st))
	}

	rabbittest.MustSet(t, l, "inventory.processing", 0)
	rabbittest.MustSet(t, l, "inventory.restart", nil)
	st = rabbittest.WaitFor(t, l, 10*time.Second, "inventory to ack all 100", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "inventory.acked") == 100
	})
	if got := rabbittest.Counter(st, "inventory.redeliveries"); got != 10 {
		t.Errorf("inventory redeliveries %d, want the 10 it held", got)
	}
	if got := rabbittest.Counter(st, "inventory.lost"); got != 0 {
		t.Errorf("inventory lost %d, want 0", got)
	}
	if got := rabbittest.Counter(st, "redeliveries"); got != 10 {
		t.Errorf("redeliveries %d, want 10", got)
	}
	// None of the 10 had been processed: a redelivery, not a duplicate.
	if d := st.Ledger.Duplicates; d == nil || d.Name != "duplicates" || d.Value != 0 || rabbittest.Counter(st, "duplicates") != 0 {
		t.Errorf("ledger duplicates %+v, counter %d, want 0", d, rabbittest.Counter(st, "duplicates"))
	}
	redelivered := l.sink.Count(func(e flow.Event) bool {
		return e.Kind == flow.KindDeliver && e.To == "inventory" && e.Detail.Redeliver && e.Attempt == 2
	})
	if redelivered != 10 {
		t.Errorf("%d deliver events to inventory flagged redelivered (attempt 2), want 10", redelivered)
	}
	m, ok := l.Message(l.publishedID(1))
	if !ok || m.Copies["inventory"].Deliveries != 2 || m.Copies["inventory"].State != "acked" || !m.Confirmed {
		t.Errorf("the first order in the ledger: %+v, want confirmed, inventory's copy delivered twice and acked", m)
	}
	mustBalance(t, st)
}

// A crash mid-processing with auto-ack: every message inventory had taken in
// was already gone from the broker, so all are lost, and counted.
func TestCrashWithAutoAckLosesWhatTheConsumerHeld(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	// A durable queue, so that what is lost is lost to the crash alone, not
	// to an exclusive queue's deletion.
	rabbittest.MustSet(t, l, "inventory.queue", "durable")
	rabbittest.MustSet(t, l, "inventory.processing", 5000)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", func(st flow.Stats) bool {
		return rabbittest.AllUp(consumers...)(st) && flag(st.Nodes["queue-inventory"], "durable")
	})

	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "all 100 pushed to inventory", func(st flow.Stats) bool {
		return count(st.Nodes["inventory"], "in-memory") == 100
	})
	rabbittest.MustSet(t, l, "inventory.crash", nil)
	st := rabbittest.WaitFor(t, l, 5*time.Second, "the crash accounted", func(st flow.Stats) bool {
		return st.Nodes["inventory"].State == "crashed" && rabbittest.Counter(st, "inventory.lost") == 100
	})
	for name, want := range map[string]int64{"inventory.acked": 0, "inventory.in-flight": 0, "inventory.redeliveries": 0, "email.acked": 100, "analytics.acked": 100} {
		if got := rabbittest.Counter(st, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	m, _ := l.Message(l.publishedID(50))
	if c := m.Copies["inventory"]; c.State != "dropped" || c.Why == "" {
		t.Errorf("the 50th order's inventory copy %+v, want dropped with a reason", c)
	}
	mustBalance(t, st)

	rabbittest.MustSet(t, l, "inventory.restart", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "inventory up again", rabbittest.AllUp("inventory"))
	time.Sleep(300 * time.Millisecond)
	st = l.Stats()
	if got := rabbittest.Counter(st, "inventory.acked"); got != 0 {
		t.Errorf("after restart inventory acked %d: the broker had nothing left, want 0", got)
	}
	mustBalance(t, st)
}

// Poison events go to the DLQ with dead-lettering on: the broker's DLQ holds
// them and the ledger says dead-lettered.
func TestPoisonIsDeadLettered(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "order-service.poison", 100)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "300 copies dead-lettered and in the DLQ", func(st flow.Stats) bool {
		return part(st, "dead-lettered") == 300 && count(st.Nodes["dlq"], "ready") == 300
	})
	mustBalance(t, st)
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindDeadLetter && e.To == "dlq" }); n != 300 {
		t.Errorf("%d dead-letter events, want 300", n)
	}
}

// reliableUp says every consumer runs with the reliable preset's settings.
func reliableUp(st flow.Stats) bool {
	for _, c := range consumers {
		if st.Nodes[c].State != "up" || word(st.Nodes[c], "ack-mode") != "manual" || !flag(st.Nodes["queue-"+c], "durable") {
			return false
		}
	}
	return true
}

func mustApply(tb testing.TB, s flow.Scenario, preset string) {
	tb.Helper()
	if err := flow.ApplyPreset(s, preset); err != nil {
		tb.Fatalf("preset %s: %v", preset, err)
	}
}

// With mandatory on and no queue bound at all, the broker returns every
// event: counted returned, each copy dropped, nothing silent.
func TestMandatoryReturnsUnroutableEvents(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "order-service.mandatory", true)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	for _, c := range consumers {
		rabbittest.MustSet(t, l, c+".stop", nil)
	}
	rabbittest.WaitFor(t, l, 5*time.Second, "every queue gone", func(st flow.Stats) bool {
		for _, c := range consumers {
			if st.Nodes["queue-"+c].State != "absent" {
				return false
			}
		}
		return true
	})
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 returned", func(st flow.Stats) bool { return rabbittest.Counter(st, "returned") == 100 })
	if got := part(st, "lost"); got != 300 {
		t.Errorf("dropped %d copies, want 300", got)
	}
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindReturn && e.To == "order-service" }); n != 100 {
		t.Errorf("%d return events, want 100", n)
	}
	if m, _ := l.Message(l.publishedID(7)); !m.Returned {
		t.Errorf("the 7th order: %+v, want returned", m)
	}
	mustBalance(t, st)
}

// Poison rejected with requeue comes straight back, again and again: the
// loop shows as redeliveries while nothing settles. Switching to
// dead-lettering empties the loop into the DLQ.
func TestPoisonRequeueLoopsUntilDeadLettered(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "dlq.poison-handling", "requeue")
	rabbittest.MustSet(t, l, "order-service.poison", 100)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "the requeue loop", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "inventory.redeliveries") >= 5
	})
	if part(st, "acked") != 0 || part(st, "dead-lettered") != 0 || part(st, "lost") != 0 {
		t.Errorf("poison settled while requeued:\n%s", rabbittest.Describe(st))
	}
	// Requeued poison is delivered again and again, never processed: every
	// delivery a redelivery, none a duplicate.
	if d := st.Ledger.Duplicates; d == nil || d.Name != "duplicates" || d.Value != 0 || rabbittest.Counter(st, "duplicates") != 0 {
		t.Errorf("the requeue loop counted duplicates: ledger %+v, counter %d", d, rabbittest.Counter(st, "duplicates"))
	}
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindRequeue && e.To == "queue-inventory" }); n < 5 {
		t.Errorf("%d requeue events from inventory, want at least 5", n)
	}
	mustBalance(t, st)

	rabbittest.MustSet(t, l, "dlq.poison-handling", "dead-letter")
	st = rabbittest.WaitFor(t, l, 10*time.Second, "all 300 copies dead-lettered", func(st flow.Stats) bool {
		return part(st, "dead-lettered") == 300
	})
	mustBalance(t, st)
}

// A consumer that crashes after processing an event and before its ack gets
// it back and processes it again: one duplicate, beside the redeliveries of
// every copy it held.
func TestCrashAfterProcessingProcessesTwice(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "inventory.processing", 300)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", func(st flow.Stats) bool {
		return reliableUp(st) && count(st.Nodes["inventory"], "prefetch") == 10
	})
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "all 100 confirmed and inventory holding its 10 prefetched", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "confirmed") == 100 && count(st.Nodes["queue-inventory"], "unacked") == 10
	})
	rabbittest.MustSet(t, l, "inventory.crash-after-processing", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "inventory crashed", func(st flow.Stats) bool { return st.Nodes["inventory"].State == "crashed" })
	rabbittest.MustSet(t, l, "inventory.processing", 0)
	rabbittest.MustSet(t, l, "inventory.restart", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "inventory to ack all 100", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "inventory.acked") == 100
	})
	if got := rabbittest.Counter(st, "inventory.redeliveries"); got != 10 {
		t.Errorf("inventory redeliveries %d, want the 10 it held", got)
	}
	if d := st.Ledger.Duplicates; d == nil || d.Value != 1 || rabbittest.Counter(st, "duplicates") != 1 {
		t.Errorf("ledger duplicates %+v, counter %d, want 1", d, rabbittest.Counter(st, "duplicates"))
	}
	twice := 0
	for n := 1; n <= 100; n++ {
		if m, _ := l.Message(l.publishedID(n)); m.Copies["inventory"].Processed == 2 {
			twice++
		}
	}
	if twice != 1 {
		t.Errorf("%d copies processed twice, want 1", twice)
	}
	mustBalance(t, st)

	// Under auto-ack there is no ack to crash before.
	rabbittest.MustSet(t, l, "email.ack", "auto")
	if err := rabbittest.Set(l, "email.crash-after-processing", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("crash after processing under auto-ack: %v, want invalid", err)
	}
}
