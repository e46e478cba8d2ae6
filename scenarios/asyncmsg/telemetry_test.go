package asyncmsg_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
)

// The scenario's Kafka clients send the broker no telemetry of their own
// (KIP-714): a franz-go client does by default once the broker offers it,
// and kfake does, which cost every sandbox about 2 MiB of gzip state and
// the CPU to fill it. Nothing of it is shown on the page.
func TestClientsSendNoTelemetry(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var asked atomic.Int64
	for _, key := range []kmsg.Key{kmsg.GetTelemetrySubscriptions, kmsg.PushTelemetry} {
		c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			asked.Add(1)
			return nil, nil, false
		})
	}
	l := mustLab(t)
	s, err := asyncmsg.Open(asyncmsg.Config{Brokers: c.ListenAddrs(), Lab: l, Emit: flow.NewEmitter(l, asyncmsg.Name, &events{})})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "rate", 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	lb := &lab{t: t, s: s}
	eventually(t, 15*time.Second, "records processed by the group", func() bool { return lb.counter("processed") > 0 })
	time.Sleep(time.Second) // a client asks within a request's round trip of its first
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n > 0 {
		t.Fatalf("the scenario's clients sent %d telemetry requests", n)
	}
}
