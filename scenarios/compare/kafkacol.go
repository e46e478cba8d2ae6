package compare

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

// kafkaPartitions is the topic's partition count: orders keyed by id spread
// over them, each order's records in one.
const kafkaPartitions = 3

// kafkaColumn is the asynchronous-messaging pattern: order-service produces
// each order to a topic keyed by order id and answers its caller once the
// broker has it; inventory and email are two consumer groups reading the
// same log, each at its own offset.
type kafkaColumn struct {
	books   *books
	emit    *flow.Emitter
	run     string
	brokers []string
	topic   string

	producer  *kgo.Client
	consumers [2]*kafkaConsumer
	// commitFirst commits a batch as soon as it is polled, before the
	// work, as auto-commit does in effect; otherwise after the work.
	commitFirst atomic.Bool

	mu      sync.Mutex
	state   string // order-service's: starting, up, or what failed
	readErr string // why the last lag read failed
}

// Commit modes of the Kafka column.
const (
	commitAfter = "after-work" // commit what was done, after the work: at least once
	commitFirst = "on-poll"    // commit what was polled, before the work: at most once
)

// kafkaConsumer is one service as a consumer group of one member.
type kafkaConsumer struct {
	node   string
	mark   uint8 // what its work marks in the books
	group  string
	wake   chan struct{}
	wanted func() bool
	work   func(ctx context.Context, n int64) bool
	state  atomic.Value // string: down, joining, up
	lag    atomic.Int64 // the topic's end minus the group's committed offsets, as last read
	inHand atomic.Int64 // records of the current batch not yet worked on
}

func openKafka(brokers []string, lab *flow.Lab, b *books, inv *inventoryState, emit *flow.Emitter, run string) (*kafkaColumn, error) {
	c := &kafkaColumn{books: b, emit: emit, run: run, brokers: brokers, topic: lab.Name("compare.orders"), state: "starting"}
	var err error
	c.producer, err = kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(c.topic),
		kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(0),
		// serve makes the topic as the column starts: records produced
		// before wait for it rather than fail.
		kgo.UnknownTopicRetries(-1))
	if err != nil {
		return nil, flow.Errorf(flow.Invalid, "Kafka producer: %v", err)
	}
	c.consumers[0] = &kafkaConsumer{node: "kafka-inventory", mark: markReserved, group: lab.Name("compare.inventory"),
		wanted: func() bool { return inv.up.Load() },
		work:   func(ctx context.Context, n int64) bool { return reserveStock(ctx, inv, b, n) }}
	c.consumers[1] = &kafkaConsumer{node: "kafka-email", mark: markEmailed, group: lab.Name("compare.email"),
		wanted: func() bool { return true },
		work:   func(_ context.Context, n int64) bool { return sendConfirmation(b, n) }}
	for _, s := range c.consumers {
		s.wake = make(chan struct{}, 1)
		s.state.Store("starting")
	}
	return c, nil
}

// serve makes the topic, then runs both consumers and the lag reader until
// ctx ends.
func (c *kafkaColumn) serve(ctx context.Context) {
	defer c.producer.Close()
	admin := kadm.NewClient(c.producer)
	for ctx.Err() == nil {
		_, err := admin.CreateTopic(ctx, kafkaPartitions, 1, nil, c.topic)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		c.setState("no topic: " + err.Error())
		sleep(ctx, time.Second)
	}
	c.setState("up")
	var wg sync.WaitGroup
	for _, s := range c.consumers {
		wg.Go(func() { c.consume(ctx, s) })
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			c.readLag(ctx, admin)
			sleep(ctx, 500*time.Millisecond)
		}
	})
	wg.Wait()
}

func (c *kafkaColumn) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// place produces one order; the caller is answered when the broker acks,
// or told no when the producer gives up on it.
func (c *kafkaColumn) place(ctx context.Context) {
	n := c.books.place()
	start := time.Now()
	id := orderID("kafka", n)
	c.emit.Emit(flow.Event{Kind: flow.KindPublish, From: "kafka", To: "kafka-topic", MsgID: id, Detail: flow.Detail{Key: id}})
	// TryProduce: a producer whose buffer is full refuses the order at once
	// rather than hold up the load, and with it the other two columns.
	c.producer.TryProduce(ctx, &kgo.Record{Key: []byte(id), Value: []byte(orderBody(c.run, n))}, func(r *kgo.Record, err error) {
		c.books.answered(n, err == nil, time.Since(start))
	})
}

// setInventory ends inventory's member, whatever it is doing: it starts
// again as the inventory state now says.
func (c *kafkaColumn) setInventory() {
	select {
	case c.consumers[0].wake <- struct{}{}:
	default:
	}
}

// consume runs one service's group member while the service is wanted, a
// new member each time it comes back, which resumes from the group's
// committed offsets.
func (c *kafkaColumn) consume(ctx context.Context, s *kafkaConsumer) {
	for ctx.Err() == nil {
		if !s.wanted() {
			s.state.Store("down")
			select {
			case <-ctx.Done():
			case <-s.wake:
			}
			continue
		}
		s.state.Store("joining")
		c.member(ctx, s)
	}
}

// member is one member's life: it commits each batch after the work, or,
// committing on poll, before it; a member stopped part-way through a batch
// it committed first leaves the rest of it lost.
func (c *kafkaColumn) member(ctx context.Context, s *kafkaConsumer) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumerGroup(s.group), kgo.ConsumeTopics(c.topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		s.state.Store("failed: " + err.Error())
		sleep(ctx, time.Second)
		return
	}
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-s.wake:
			stop()
		case <-mctx.Done():
		}
	}()
	defer func() {
		// Leave the group politely: the next member takes over at once.
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		cl.LeaveGroupContext(cctx)
		cl.Close()
	}()
	for mctx.Err() == nil {
		fs := cl.PollFetches(mctx)
		if fs.IsClientClosed() {
			return
		}
		s.state.Store("up")
		records := fs.Records()
		s.inHand.Store(int64(len(records)))
		first := c.commitFirst.Load()
		if first {
			commit(cl, records)
		}
		var done []*kgo.Record
		for _, r := range records {
			n, ok := parseOrder(c.run, string(r.Value))
			switch {
			case !ok:
			case mctx.Err() != nil:
				if first {
					c.books.loseOne(n, s.mark)
				}
				continue
			default:
				dup := s.work(ctx, n)
				c.emit.Emit(flow.Event{Kind: flow.KindDeliver, From: "kafka-topic", To: s.node, MsgID: string(r.Key),
					Detail: flow.Detail{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Duplicate: dup}})
			}
			done = append(done, r)
			s.inHand.Add(-1)
		}
		s.inHand.Store(0)
		if !first {
			commit(cl, done)
		}
	}
}

// commit commits records' offsets, waiting at most 3 s.
func commit(cl *kgo.Client, records []*kgo.Record) {
	if len(records) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cl.CommitRecords(ctx, records...)
}

// readLag reads each group's lag: the log's end minus its committed offset,
// per partition (0 committed when the group has not committed there).
func (c *kafkaColumn) readLag(ctx context.Context, admin *kadm.Client) {
	ends, err := admin.ListEndOffsets(ctx, c.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		c.setReadErr(err)
		return
	}
	for _, s := range c.consumers {
		committed, err := admin.FetchOffsets(ctx, s.group)
		if err != nil {
			c.setReadErr(err)
			return
		}
		var lag int64
		ends.Each(func(o kadm.ListedOffset) {
			end := o.Offset
			if off, ok := committed.Lookup(o.Topic, o.Partition); ok && off.At >= 0 {
				end -= off.At
			}
			lag += max(end, 0)
		})
		s.lag.Store(lag)
	}
	c.setReadErr(nil)
}

func (c *kafkaColumn) setReadErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readErr = ""
	if err != nil {
		c.readErr = err.Error()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
