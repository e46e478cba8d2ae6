package main

import (
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaBroker is the embedded Kafka-protocol broker (franz-go's kfake), used
// unless KAFKA_BROKERS names a real cluster.
type kafkaBroker struct {
	cluster *kfake.Cluster
	stop    chan struct{} // closed by Close: ends the retention loop
	done    chan struct{} // closed when the retention loop has ended
}

// startKafka starts the embedded broker on addr. kfake keeps every record in
// memory, so a day-long workshop would grow without bound: with a retention
// above 0 the broker deletes records older than that from every topic, as a
// real broker does with log.retention.ms, a segment at a time. kfake knows
// log.retention.ms but enforces it only when asked (its own ticker runs
// hourly, and only for topics with a retention config of their own), so the
// broker is asked every retentionCheck(retention). Records a group has not
// processed yet are deleted too, as Kafka would: the lab's ledger counts
// them.
func startKafka(addr string, retention time.Duration) (*kafkaBroker, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// ListenFn keeps the host part of addr, which kfake.Ports alone would not.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.AllowAutoTopicCreation(),
		// Real Kafka refuses session timeouts under 6 s; the embedded broker
		// takes 1 s, so a crashed member's rebalance can be watched quickly.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if retention > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{
			"log.retention.ms": strconv.FormatInt(retention.Milliseconds(), 10),
			// Retention frees whole segments only, and kfake rolls one
			// at 100 MiB by default (never by age): a partition would
			// hold 100 MiB before any were freed.
			"log.segment.bytes": strconv.Itoa(segmentBytes),
		}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	k := &kafkaBroker{cluster: c, stop: make(chan struct{}), done: make(chan struct{})}
	go k.trim(retention)
	return k, nil
}

// segmentBytes is the embedded broker's segment size with a retention: the
// most a partition holds beyond its retention, and Kafka's smallest.
const segmentBytes = 1 << 20

// trim applies the retention until Close.
func (k *kafkaBroker) trim(retention time.Duration) {
	defer close(k.done)
	if retention <= 0 {
		return
	}
	t := time.NewTicker(retentionCheck(retention))
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.cluster.ApplyRetention()
		}
	}
}

// retentionCheck is how often the retention is applied: a tenth of it, so
// a record outlives it by a tenth at most, and between 100 ms and 30 s.
func retentionCheck(retention time.Duration) time.Duration {
	return min(max(retention/10, 100*time.Millisecond), 30*time.Second)
}

func (k *kafkaBroker) Addrs() []string { return k.cluster.ListenAddrs() }

// Close stops the retention loop, then the broker: ApplyRetention must not
// be asked of a closed cluster.
func (k *kafkaBroker) Close() {
	close(k.stop)
	<-k.done
	k.cluster.Close()
}
