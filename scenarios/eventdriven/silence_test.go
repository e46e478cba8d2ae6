package eventdriven_test

import (
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// silence black-holes the path while orders flow at 20/s and flowing holds,
// until order-service's heartbeat notices, then calls during, restores the
// path and waits for every consumer to be back.
func silence(t *testing.T, l *lab, flowing func(flow.Stats) bool, during func()) {
	t.Helper()
	services := append([]string{"order-service"}, consumers...)
	rabbittest.MustSet(t, l, "order-service.rate", 20)
	rabbittest.WaitFor(t, l, 10*time.Second, "orders flowing", func(st flow.Stats) bool {
		return rabbittest.AllUp(services...)(st) && rabbittest.Counter(st, "inventory.acked") > 10 && flowing(st)
	})
	rabbittest.MustSet(t, l, "broker.silence", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "order-service to notice the silence", func(st flow.Stats) bool {
		return st.Nodes["order-service"].State != "up"
	})
	during()
	rabbittest.MustSet(t, l, "broker.restore", nil)
	rabbittest.WaitFor(t, l, 15*time.Second, "every consumer back", rabbittest.AllUp(consumers...))
}

func always(flow.Stats) bool { return true }

// lostWhy counts the drop events at consumer c's queue that give why.
func lostWhy(l *lab, c, why string) int64 {
	return int64(l.sink.Count(func(e flow.Event) bool {
		return e.Kind == flow.KindDrop && e.To == "queue-"+c && strings.Contains(e.Detail.Outcome, why)
	}))
}

// settled waits until no copy is in flight, and checks that the ledger and
// every consumer's account add up.
func settled(t *testing.T, l *lab, within time.Duration) flow.Stats {
	t.Helper()
	st := rabbittest.WaitFor(t, l, within, "no copy in flight", func(st flow.Stats) bool {
		return part(st, "in-flight") == 0
	})
	mustBalance(t, st)
	t.Logf("published %d: %s", rabbittest.Counter(st, "published"), rabbittest.Describe(st))
	return st
}

// With confirms, a publish the black hole swallowed is never confirmed: after
// the restore order-service publishes it again, and the ledger settles. If the
// broker had it after all, the consumer sees it twice: a duplicate, counted.
func TestSilencedUnconfirmedPublishIsSentAgain(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	silence(t, l, always, func() {})
	rabbittest.WaitFor(t, l, 15*time.Second, "order-service publishing again", func(st flow.Stats) bool {
		return st.Nodes["order-service"].State == "up"
	})
	rabbittest.MustSet(t, l, "order-service.rate", 0)
	st := settled(t, l, 20*time.Second)

	again := l.sink.Count(func(e flow.Event) bool {
		return e.Kind == flow.KindPublish && e.From == "order-service" && strings.Contains(e.Detail.Outcome, "again")
	})
	if again < 1 {
		t.Errorf("no publish was sent again after the silence")
	}
	for _, c := range consumers {
		if got := rabbittest.Counter(st, c+".lost"); got != 0 {
			t.Errorf("%s lost %d with confirms and durable queues", c, got)
		}
	}
	if got, want := rabbittest.Counter(st, "confirmed"), rabbittest.Counter(st, "published"); got != want {
		t.Errorf("%d of %d published confirmed", got, want)
	}
}

// Without confirms order-service cannot know which publishes the black hole
// swallowed. Nothing new is published after the restore, so only the broker
// can say: each copy not in its queue once the queue is seen empty is counted
// lost, with the reason.
func TestSilencedPublishWithoutConfirmIsCountedLostWhenItsQueueIsEmpty(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "order-service.confirms", false)
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	silence(t, l, always, func() { rabbittest.MustSet(t, l, "order-service.rate", 0) })
	st := settled(t, l, 20*time.Second)
	for _, c := range consumers {
		lost := rabbittest.Counter(st, c+".lost")
		if lost == 0 {
			t.Errorf("%s lost nothing: the silence swallowed no publish?", c)
		}
		if why := lostWhy(l, c, "the queue was empty afterwards"); why != lost {
			t.Errorf("%d of %s's %d lost copies shown as not in its empty queue", why, c, lost)
		}
	}
}

// The same while orders keep flowing into queues that never empty (slow
// consumers): a later order arriving first shows that the swallowed ones never
// reached the queue.
func TestSilencedPublishWithoutConfirmIsCountedLostWhenALaterOneArrives(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "order-service.confirms", false)
	for _, c := range consumers {
		rabbittest.MustSet(t, l, c+".processing", 100)
	}
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	backlog := func(st flow.Stats) bool {
		for _, c := range consumers {
			if count(st.Nodes["queue-"+c], "ready") == 0 {
				return false
			}
		}
		return true
	}
	silence(t, l, backlog, func() {})
	rabbittest.WaitFor(t, l, 15*time.Second, "the swallowed copies counted lost while the queues hold more", func(st flow.Stats) bool {
		for _, c := range consumers {
			if rabbittest.Counter(st, c+".lost") == 0 {
				return false
			}
		}
		return true
	})
	rabbittest.MustSet(t, l, "order-service.rate", 0)
	for _, c := range consumers {
		rabbittest.MustSet(t, l, c+".processing", 0)
	}
	st := settled(t, l, 20*time.Second)
	for _, c := range consumers {
		if lost, why := rabbittest.Counter(st, c+".lost"), lostWhy(l, c, "a later event arrived first"); why != lost {
			t.Errorf("%d of %s's %d lost copies shown as passed by a later event", why, c, lost)
		}
	}
}

// The article's set-up (a connection per publish, no confirms, exclusive
// queues) settles too: what the silence swallowed is lost with the consumers'
// exclusive queues, or never reached the broker at all, and is counted.
func TestSilencedArticleSetupSettles(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	silence(t, l, always, func() {})
	rabbittest.WaitFor(t, l, 15*time.Second, "order-service publishing again", func(st flow.Stats) bool {
		return st.Nodes["order-service"].State == "up"
	})
	rabbittest.MustSet(t, l, "order-service.rate", 0)
	settled(t, l, 20*time.Second)
}
