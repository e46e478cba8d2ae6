package asyncmsg_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
)

// held lists what the broker at brokers holds for lab l: topics and groups
// whose names end in "."+l.ID, as the broker lists them. Each look is a new
// client: a client answers a metadata request from its cache for a while,
// and would still list a deleted topic.
func held(t *testing.T, brokers []string, l *flow.Lab) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := admin.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range topics.Names() {
		if strings.HasSuffix(name, "."+l.ID) {
			out = append(out, "topic "+name)
		}
	}
	for _, name := range groups.Groups() {
		if strings.HasSuffix(name, "."+l.ID) {
			out = append(out, "group "+name)
		}
	}
	slices.Sort(out)
	return out
}

// With records produced and committed in two labs on one broker, Teardown
// of one deletes its topic and group, and nothing of the other.
func TestTeardownDeletesTheLabsTopicAndGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)

	type run struct {
		lab  *flow.Lab
		s    *asyncmsg.Scenario
		stop context.CancelFunc
		done chan error
	}
	var runs []*run
	for range 2 {
		l := mustLab(t)
		s, err := asyncmsg.Open(asyncmsg.Config{Brokers: c.ListenAddrs(), Lab: l, Emit: flow.NewEmitter(l, asyncmsg.Name, &events{})})
		if err != nil {
			t.Fatal(err)
		}
		mustSet(t, s, "rate", 50)
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		r := &run{lab: l, s: s, stop: stop, done: make(chan error, 1)}
		go func() { r.done <- s.Run(ctx) }()
		runs = append(runs, r)
	}
	want := func(l *flow.Lab) []string {
		return []string{"group " + l.Name("inventory"), "topic " + l.Name("orders")}
	}
	for _, r := range runs {
		eventually(t, 15*time.Second, "the lab's topic and group on the broker, with commits", func() bool {
			if !slices.Equal(held(t, c.ListenAddrs(), r.lab), want(r.lab)) {
				return false
			}
			offsets, err := admin.FetchOffsets(context.Background(), r.lab.Name("inventory"))
			return err == nil && len(offsets) > 0
		})
	}
	for _, r := range runs {
		r.stop()
		select {
		case err := <-r.done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return 20 s after its context ended")
		}
	}
	teardown := func(r *run) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.s.Teardown(ctx); err != nil {
			t.Fatalf("Teardown of lab %s: %v", r.lab.ID, err)
		}
	}
	first, second := runs[0], runs[1]
	teardown(first)
	if h := held(t, c.ListenAddrs(), first.lab); len(h) > 0 {
		t.Errorf("after Teardown the broker still holds %v", h)
	}
	if h := held(t, c.ListenAddrs(), second.lab); !slices.Equal(h, want(second.lab)) {
		t.Errorf("tearing down lab %s changed lab %s: the broker holds %v, want %v", first.lab.ID, second.lab.ID, h, want(second.lab))
	}
	teardown(second)
	teardown(first) // nothing left is not an error
	if h := held(t, c.ListenAddrs(), second.lab); len(h) > 0 {
		t.Errorf("after Teardown the broker still holds %v", h)
	}
}
