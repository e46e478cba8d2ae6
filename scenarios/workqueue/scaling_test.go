package workqueue_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// workerNodes are the worker nodes the diagram draws.
func workerNodes(l *lab) []string {
	var names []string
	for _, n := range l.View().Nodes {
		if strings.HasPrefix(n.ID, "worker-") {
			names = append(names, n.ID)
		}
	}
	return names
}

// done is a worker's jobs done.
func done(st flow.Stats, worker string) int64 {
	v, _ := st.Nodes[worker].Value("done")
	n, _ := v.(int64)
	return n
}

// The learner adds workers up to the bound of the workers knob, and each
// worker node counts its jobs done: the work is shared, and the counts add up
// to the jobs acked, exactly.
func TestAddedWorkersShareTheJobs(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "emails.add-worker", nil)
	if got := workerNodes(l); !slices.Equal(got, []string{"worker-1", "worker-2", "worker-3", "worker-4"}) {
		t.Fatalf("after adding one the diagram draws %v", got)
	}
	var max int
	for _, k := range l.Knobs() {
		if k.Name == "emails.workers" {
			max = k.Max
			if k.Value != 4 {
				t.Errorf("workers knob %v, want 4", k.Value)
			}
		}
	}
	for range max - 4 {
		rabbittest.MustSet(t, l, "emails.add-worker", nil)
	}
	if err := rabbittest.Set(l, "emails.add-worker", nil); flow.KindOf(err) != flow.Invalid || !strings.Contains(err.Error(), fmt.Sprint(max)) {
		t.Errorf("a worker past the bound of %d: %v, want an invalid-input error naming the bound", max, err)
	}
	staff := workerNodes(l)
	if len(staff) != max {
		t.Fatalf("%d workers drawn, want %d", len(staff), max)
	}
	rabbittest.MustSet(t, l, "emails.processing", 20)
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", func(st flow.Stats) bool {
		return rabbittest.AllUp(staff...)(st) && factIs(st, "emails", "consumers", int64(max))
	})
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 sent", func(st flow.Stats) bool { return rabbittest.Counter(st, "acked") == 100 })
	var sum int64
	busy := 0
	for _, w := range staff {
		sum += done(st, w)
		if done(st, w) > 0 {
			busy++
		}
	}
	if sum != 100 {
		t.Errorf("the workers' jobs done add up to %d, acked 100:\n%s", sum, rabbittest.Describe(st))
	}
	if busy < 3 {
		t.Errorf("only %d of %d workers did jobs:\n%s", busy, max, rabbittest.Describe(st))
	}
	rabbittest.MustBalance(t, st)
}

// Removing a worker stops the last one cleanly: its node and knobs go, the
// jobs it held go back to the queue and are sent by the others, none lost,
// none sent twice. There is always one worker left.
func TestRemovedWorkerHandsItsJobsBack(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "emails.processing", 5000)
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "worker-3 holding 5", func(st flow.Stats) bool { return factIs(st, "worker-3", "unacked", int64(5)) })
	rabbittest.MustSet(t, l, "emails.remove-worker", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "worker-3 gone", func(st flow.Stats) bool {
		_, drawn := st.Nodes["worker-3"]
		return !drawn
	})
	if got := workerNodes(l); !slices.Equal(got, []string{"worker-1", "worker-2"}) {
		t.Fatalf("after removing one the diagram draws %v", got)
	}
	if err := rabbittest.Set(l, "worker-3.stop", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("a removed worker's knob: %v, want invalid input", err)
	}
	rabbittest.MustSet(t, l, "emails.remove-worker", nil)
	if err := rabbittest.Set(l, "emails.remove-worker", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("removing the last worker: %v, want invalid input", err)
	}
	rabbittest.MustSet(t, l, "emails.processing", 0)
	rabbittest.MustSet(t, l, "worker-1.restart", nil) // takes the new time at once
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 sent by worker-1", func(st flow.Stats) bool { return rabbittest.Counter(st, "acked") == 100 })
	if _, drawn := st.Nodes["worker-3"]; drawn {
		t.Errorf("a removed worker still has a node")
	}
	if got := rabbittest.Counter(st, "duplicates"); got != 0 {
		t.Errorf("%d emails sent twice", got)
	}
	if got := rabbittest.Counter(st, "redeliveries"); got < 5 {
		t.Errorf("%d redeliveries, want at least the 5 worker-3 held", got)
	}
	rabbittest.MustBalance(t, st)
}

// The flaky mail server shows its lesson at its own settings within 10 s: a
// job fails its last attempt and lands in the DLQ, counted and seen there.
func TestFlakyPresetDeadLettersWithinTenSeconds(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "emails.processing", 100) // the default
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	if err := flow.ApplyPreset(l, "flaky"); err != nil {
		t.Fatal(err)
	}
	st := rabbittest.WaitFor(t, l, 10*time.Second, "a dead letter, counted and in the DLQ", func(st flow.Stats) bool {
		v, _ := st.Nodes["dlq"].Value("ready")
		return rabbittest.Counter(st, "dead-lettered") > 0 && v.(int64) > 0
	})
	rabbittest.MustBalance(t, st)
}

// A backlog that drains after the workers come back names what the learner
// sees: the queue catching up, eventual consistency, with its own numbers.
func TestDrainingBacklogIsNamed(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	for _, w := range workers {
		rabbittest.MustSet(t, l, w+".stop", nil)
	}
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 ready", func(st flow.Stats) bool { return factIs(st, "emails", "ready", int64(100)) })
	if factIs(st, "emails", "catching-up", true) {
		t.Errorf("a backlog that grows is not catching up: %+v", st.Nodes["emails"])
	}
	rabbittest.MustSet(t, l, "emails.processing", 100)
	rabbittest.MustSet(t, l, "worker-1.restart", nil)
	st = rabbittest.WaitFor(t, l, 10*time.Second, "the queue catching up", func(st flow.Stats) bool { return factIs(st, "emails", "catching-up", true) })
	ready, _ := st.Nodes["emails"].Value("ready")
	want := fmt.Sprintf("catching up: %d ready — eventual consistency", ready)
	if !slices.Contains(st.Nodes["emails"].Badges(), want) {
		t.Errorf("emails draws %q, want %q", st.Nodes["emails"].Badges(), want)
	}
	rabbittest.MustSet(t, l, "emails.processing", 0)
	rabbittest.MustSet(t, l, "worker-1.restart", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "caught up", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "acked") == 100 && factIs(st, "emails", "ready", int64(0)) && factIs(st, "emails", "catching-up", false)
	})
}
