package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEmbeddedKafkaDeletesOldRecords produces records to the embedded broker
// started with a 1 s retention and watches the broker move its log start
// past them by itself; with retention 0 they stay.
func TestEmbeddedKafkaDeletesOldRecords(t *testing.T) {
	for _, retention := range []time.Duration{time.Second, 0} {
		k, err := startKafka("127.0.0.1:0", retention)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.DefaultProduceTopic("retained"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "retained"); err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, 100)
		for i := range recs {
			recs[i] = &kgo.Record{Value: []byte("order")}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		start := func() int64 {
			starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, "retained")
			if err == nil {
				err = starts.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			o, _ := starts.Lookup("retained", 0)
			return o.Offset
		}
		deadline := time.Now().Add(3 * time.Second)
		for start() < 100 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		switch got := start(); {
		case retention > 0 && got != 100:
			t.Errorf("retention %v: the log starts at %d 3 s after 100 records, want 100", retention, got)
		case retention == 0 && got != 0:
			t.Errorf("no retention: the log starts at %d, want 0", got)
		}
		cancel()
		cl.Close()
		k.Close()
	}
}
