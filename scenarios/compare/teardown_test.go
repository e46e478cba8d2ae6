package compare_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
	"flowlab/scenarios/compare"
	"flowlab/scenarios/internal/rabbittest"
)

// Teardown deletes what its lab made on both brokers, and nothing of
// another lab's: the exchange and durable queues on RabbitMQ, the topic and
// both groups on Kafka.
func TestTeardownDeletesOnlyItsLab(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// Each look is a new client: a client answers a metadata request from
	// its cache for a while, and would still list a deleted topic.
	kafkaHeld := func(l *flow.Lab) []string {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		admin := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var held []string
		topics, err := admin.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if topics.Has(l.Name("compare.orders")) {
			held = append(held, "topic")
		}
		groups, err := admin.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"compare.inventory", "compare.email"} {
			if slices.Contains(groups.Groups(), l.Name(g)) {
				held = append(held, "group "+g)
			}
		}
		return held
	}
	type run struct {
		lab   *flow.Lab
		s     *compare.Scenario
		stop  context.CancelFunc
		ended chan struct{} // closed when Run has returned, err set
		err   error
	}
	var runs []*run
	for range 2 {
		l := rabbittest.MustLab(t)
		s, err := compare.Open(compare.Config{AMQPURL: rabbittest.URL(), Brokers: c.ListenAddrs(), Lab: l,
			Emit: flow.NewEmitter(l, compare.Name, &rabbittest.Sink{})})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		r := &run{lab: l, s: s, stop: stop, ended: make(chan struct{})}
		go func() { r.err = s.Run(ctx); close(r.ended) }()
		t.Cleanup(func() {
			stop()
			select {
			case <-r.ended:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15 s of its context ending")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Teardown(ctx)
		})
		runs = append(runs, r)
	}
	wantRabbit := func(l *flow.Lab) []string {
		return []string{"exchange " + l.Name("compare.order_placed"), "queue " + l.Name("compare.email"), "queue " + l.Name("compare.inventory")}
	}
	wantKafka := []string{"topic", "group compare.inventory", "group compare.email"}
	for _, r := range runs {
		rabbittest.WaitFor(t, r.s, 15*time.Second, "orders fulfilled in every column", func(st flow.Stats) bool {
			return rabbittest.Counter(st, "rabbitmq.fulfilled") > 0 && rabbittest.Counter(st, "kafka.fulfilled") > 0
		})
		if held := rabbittest.Held(t, r.lab); !slices.Equal(held, wantRabbit(r.lab)) {
			t.Fatalf("RabbitMQ holds %v for lab %s, want %v", held, r.lab.ID, wantRabbit(r.lab))
		}
		if held := kafkaHeld(r.lab); !slices.Equal(held, wantKafka) {
			t.Fatalf("Kafka holds %v for lab %s, want %v", held, r.lab.ID, wantKafka)
		}
	}
	first, second := runs[0], runs[1]
	first.stop()
	if <-first.ended; first.err != nil {
		t.Fatalf("Run: %v", first.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.s.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if held := rabbittest.Held(t, first.lab); len(held) > 0 {
		t.Errorf("after Teardown RabbitMQ still holds %v", held)
	}
	if held := kafkaHeld(first.lab); len(held) > 0 {
		t.Errorf("after Teardown Kafka still holds %v", held)
	}
	if held := rabbittest.Held(t, second.lab); !slices.Equal(held, wantRabbit(second.lab)) {
		t.Errorf("tearing down one lab changed another's: RabbitMQ holds %v, want %v", held, wantRabbit(second.lab))
	}
	if held := kafkaHeld(second.lab); !slices.Equal(held, wantKafka) {
		t.Errorf("tearing down one lab changed another's: Kafka holds %v, want %v", held, wantKafka)
	}
	// A second teardown finds nothing to delete, and says nothing is wrong.
	if err := first.s.Teardown(ctx); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
}
