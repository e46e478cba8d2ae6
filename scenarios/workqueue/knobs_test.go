package workqueue_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
	"flowlab/scenarios/workqueue"
)

// mustOpen opens the scenario without running its services: knobs and
// presets can be set, and nothing is sent. Cleanup frees what Open took.
func mustOpen(tb testing.TB) *workqueue.Scenario {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	s, err := workqueue.Open(workqueue.Config{AMQPURL: rabbittest.URL(), Lab: l, Emit: flow.NewEmitter(l, workqueue.Name, &rabbittest.Sink{})})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Run(ctx)
	})
	return s
}

// "Send 100 orders" adds to a backlog with a bound: a press that would take
// it past the bound is refused with a clear error and changes nothing.
func TestSendBacklogIsCapped(t *testing.T) {
	rabbittest.CheckBacklogCap(t, mustOpen(t), workqueue.MaxBacklog)
}

// Applying preset A and then B leaves every knob as a fresh apply of B does,
// for every pair of presets, even after the learner changed what A set.
func TestPresetsRoundTrip(t *testing.T) {
	rabbittest.CheckPresetsRoundTrip(t, func(tb testing.TB) flow.Scenario { return mustOpen(tb) },
		func(tb testing.TB, s flow.Scenario) {
			rabbittest.MustSet(tb, s, "emails.max-attempts", 7)
		})
}

// Browsers setting different email knobs at once each keep their change: a
// set of one knob never writes back an older value of another.
func TestConcurrentKnobChangesAreAllKept(t *testing.T) {
	s := mustOpen(t)
	knobs := []string{"emails.failure", "emails.processing", "emails.max-attempts", "emails.prefetch"}
	const last = 8 // each ends on 8, in every one of their ranges
	for round := range 5 {
		var wg sync.WaitGroup
		for _, k := range knobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					if err := rabbittest.Set(s, k, 1+i%last); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, k := range s.Knobs() {
			if slices.Contains(knobs, k.Name) && k.Value != last {
				t.Fatalf("round %d: %s is %v after it was set to %d", round, k.Name, k.Value, last)
			}
		}
		for _, k := range knobs {
			rabbittest.MustSet(t, s, k, 1)
		}
	}
}
