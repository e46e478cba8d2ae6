package asyncmsg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

// msgHeader is the record header that carries flowlab's message id, so that
// every hop of one record joins up in the view, also when an outside
// consumer reads it.
const msgHeader = "flowlab-msg"

const (
	// deliveryTimeout bounds how long a record may wait in the producer: with
	// idempotent writes off, kgo fails it after this instead of retrying
	// forever through an outage (see STACK-NOTES: an idempotent producer was
	// still blocked after 40 s).
	deliveryTimeout = 10 * time.Second
	// maxBuffered is how many records may wait in the producer; past it
	// order-service's sends are refused rather than blocking it.
	maxBuffered = 10_000
)

// orderService is the article's producer: one kgo client that writes order
// events to the topic. It is replaced whole when acks or linger change,
// because a kgo client's options are fixed when it is built.
type orderService struct {
	cl   *kgo.Client
	acks string
	net  *netWatch
	sent atomic.Int64 // records handed to the client, for the send rate

	lastAck atomic.Int64 // unix nanoseconds of the newest broker answer
	full    atomic.Int64 // unix nanoseconds of the newest refused send

	// promise takes the broker's answer for every record: what differs per
	// record travels with the record (see sending), so the client gets one
	// func for all of them.
	promise func(*kgo.Record, error)
}

func (s *Scenario) startProducer(rt *runtime, set settings) error {
	o := &orderService{acks: set.acks, net: &netWatch{}}
	o.promise = func(r *kgo.Record, err error) { s.produced(o, r, err) }
	acks := map[string]kgo.Acks{"all": kgo.AllISRAcks(), "leader": kgo.LeaderAck(), "none": kgo.NoAck()}[set.acks]
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.Dialer(rt.paths.Dial),
		kgo.ClientID("order-service"),
		kgo.DefaultProduceTopic(s.topic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(time.Duration(set.lingerMS)*time.Millisecond),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.MaxBufferedRecords(maxBuffered),
		// New partitions must be seen within a second, not after the
		// default five minutes.
		kgo.MetadataMaxAge(time.Second),
		kgo.MetadataMinAge(500*time.Millisecond),
		kgo.WithHooks(o.net, publishHook{s}),
	)
	if err != nil {
		return flow.Errorf(flow.Internal, "order-service producer: %v", err)
	}
	o.cl = cl
	s.mu.Lock()
	s.producer = o
	s.mu.Unlock()
	return nil
}

// stopProducer flushes what it can for two seconds and closes the producer;
// records still buffered then fail and are counted as failed.
func (s *Scenario) stopProducer() {
	s.mu.Lock()
	o := s.producer
	s.producer = nil
	s.mu.Unlock()
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o.cl.Flush(ctx)
	o.cl.Close()
}

// sendOrders is order-service's main loop: it sends at the learner's rate,
// and when flushing after every record is slower than that rate it simply
// falls behind — the cost the article's flush() has. A burst (send-1000) is
// sent beside the rate, as fast as the producer takes it.
func (s *Scenario) sendOrders(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	var owed float64 // events due at the rate but not yet sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
		now := time.Now()
		elapsed := now.Sub(last)
		last = now
		s.mu.Lock()
		rate, flush, o, burst := s.set.rate, s.set.flushEach, s.producer, s.burst
		s.mu.Unlock()
		if o == nil {
			owed = 0
			continue // being replaced: a burst waits for the new one
		}
		// Never owe more than a second: a producer that fell behind does
		// not burst to catch up. Knobs are read again every 100 ms even
		// when flushing keeps it behind.
		owed = min(owed+float64(rate)*elapsed.Seconds(), float64(rate))
		// t is when the last record was handed over (or flushed): the
		// clock read sendOrder does anyway.
		sent, t := 0, now
		for ; sent < burst && ctx.Err() == nil && t.Sub(now) < 100*time.Millisecond; sent++ {
			t = s.sendOrder(ctx, o, flush)
		}
		for ; owed >= 1 && ctx.Err() == nil && t.Sub(now) < 100*time.Millisecond; owed-- {
			t = s.sendOrder(ctx, o, flush)
		}
		if sent > 0 {
			s.mu.Lock()
			s.burst -= min(sent, s.burst) // shutdown may have dropped it meanwhile
			more := s.burst > 0
			s.mu.Unlock()
			if more {
				s.wakeProducer() // go on at once, not at the next tick
			}
		}
	}
}

// sendBurst has order-service send n more order events at once, beside the
// rate.
func (s *Scenario) sendBurst(n int) error {
	if _, err := s.running(); err != nil {
		return err
	}
	s.mu.Lock()
	s.burst += n
	left := s.burst
	s.mu.Unlock()
	s.wakeProducer()
	s.state("order-service", "sending", fmt.Sprintf("a burst of %d order events at once, beside the rate (%d to send)", n, left))
	return nil
}

func (s *Scenario) wakeProducer() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// sendOrder produces the next order event and, as in the article, flushes
// after it when asked to. It returns when it handed the record over, or when
// the flush ended.
func (s *Scenario) sendOrder(ctx context.Context, o *orderService, flush bool) time.Time {
	n := s.ledger.add(waiting)
	out := s.newSending(ctx, n)
	o.sent.Add(1)
	o.cl.TryProduce(ctx, &out.rec, o.promise)
	if !flush {
		return out.start
	}
	fctx, cancel := context.WithTimeout(ctx, deliveryTimeout+time.Second)
	o.cl.Flush(fctx)
	cancel()
	return time.Now()
}

// sending is one order event on its way through the producer: the kgo
// record, its bytes and what its publish and ack hops need, in one
// allocation. The record's Context is the sending itself (kgo's place for
// what a record carries to its hooks and its promise), so the hooks find the
// message id, key and payload without building them again. It is a context
// derived from the one order-service produces with: kgo still sees that
// context's cancellation.
type sending struct {
	context.Context
	rec     kgo.Record
	headers [1]kgo.RecordHeader
	bytes   [112]byte // key, value and message id; longer ones go elsewhere
	n       uint64    // the ledger's number for the event
	// id, key and payload are the header, key and value as strings.
	id, key, payload string
	start            time.Time // when order-service handed it over
}

// newSending builds order-service's event n. Key, value and message id are
// written into the sending's own bytes for kgo and copied once into one
// string for the events.
func (s *Scenario) newSending(ctx context.Context, n uint64) *sending {
	out := &sending{Context: ctx, n: n}
	b, k := appendOrder(out.bytes[:0], n)
	v := len(b)
	b = append(b, s.runID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 10)
	str := string(b)
	out.id, out.key, out.payload = str[v:], str[:k], str[k:v]
	out.headers[0] = kgo.RecordHeader{Key: msgHeader, Value: b[v:]}
	out.start = time.Now()
	out.rec = kgo.Record{
		Key:     b[:k:k],
		Value:   b[k:v:v],
		Headers: out.headers[:],
		// What kgo would stamp itself; the publish hop reuses it rather
		// than read the clock again.
		Timestamp: out.start,
		Context:   out,
	}
	return out
}

// appendOrder appends order-service's event n: its key, the order id, and
// right after it its JSON value, {"order_id":…,"type":…,"data":{"qty":…}}.
// k is where the value starts.
func appendOrder(b []byte, n uint64) (_ []byte, k int) {
	order, kind := orderOf(n)
	b = strconv.AppendInt(b, int64(order), 10)
	k = len(b)
	b = append(b, `{"order_id":`...)
	b = strconv.AppendInt(b, int64(order), 10)
	b = append(b, `,"type":"`...) // the kinds are plain words: nothing to escape
	b = append(b, kind...)
	b = append(b, `","data":{"qty":`...)
	b = strconv.AppendInt(b, int64(1+order%3), 10)
	b = append(b, "}}"...)
	return b, k
}

// produced is the producer's answer for one record. It reads the clock
// once: for the latency, for the view's "retrying" and for the event, which
// runs hot in the producer's one promise goroutine.
func (s *Scenario) produced(o *orderService, r *kgo.Record, err error) {
	out := r.Context.(*sending) // every record of o.cl is a sending
	now := time.Now()
	took := now.Sub(out.start)
	confirmed := o.acks != "none"
	if errors.Is(err, kgo.ErrMaxBuffered) {
		o.full.Store(now.UnixNano())
		s.ledger.refuse(out.n)
	} else {
		s.ledger.produced(out.n, err, confirmed)
	}
	s.window.producedOK(err == nil)
	if err != nil {
		s.cfg.Emit.Emit(flow.Event{Time: now, Kind: flow.KindError, From: "order-service", To: "orders", MsgID: out.id,
			Detail: flow.Detail{Key: out.key, Error: err.Error(), Outcome: "failed", LatencyMS: ms(took)}})
		return
	}
	o.lastAck.Store(now.UnixNano())
	if !confirmed {
		return // with acks none the broker never answers: there is no ack to draw
	}
	s.cfg.Emit.Emit(flow.Event{Time: now, Kind: flow.KindAck, From: partitionID(r.Partition), To: "order-service", MsgID: out.id,
		Detail: flow.Detail{Partition: r.Partition, Offset: r.Offset, Key: out.key, LatencyMS: ms(took), Outcome: "ok"}})
}

// state is what the diagram says about order-service; burst is how many
// events of a burst are still to be handed to the producer.
func (o *orderService) state(rate, burst int) (string, []string) {
	buffered := o.cl.BufferedProduceRecords()
	badges := []string{fmt.Sprintf("buffered %d", buffered)}
	if burst > 0 {
		badges = append(badges, fmt.Sprintf("burst: %d to send", burst))
	}
	errAt, errText := o.net.last()
	switch {
	case buffered > 0 && errAt > o.lastAck.Load():
		return "retrying", append(badges, "retrying: "+errText)
	case time.Now().UnixNano()-o.full.Load() < int64(time.Second):
		return "buffer full", badges
	case rate == 0 && burst == 0 && buffered == 0:
		return "idle", badges
	}
	return "sending", badges
}

// orderOf maps event n to its order and event type: twenty orders are open
// at a time and each gets placed, paid and shipped, interleaved with the
// others, so a key's events are spread out in the log and their order
// within the key is worth keeping.
func orderOf(n uint64) (order int, kind string) {
	i := int(n - 1)
	block, within := i/60, i%60
	return block*20 + within%20 + 1, orderSteps[within/20]
}

var orderSteps = [3]string{"order_placed", "order_paid", "order_shipped"}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// publishHook draws the publish hop when kgo has picked the record's
// partition, which happens only inside the client. The hop is timed when
// order-service handed the record over (its timestamp).
type publishHook struct{ s *Scenario }

func (h publishHook) OnProduceRecordPartitioned(r *kgo.Record, _ int32) {
	out := r.Context.(*sending) // every record of order-service's client is a sending
	h.s.cfg.Emit.Emit(flow.Event{Time: r.Timestamp, Kind: flow.KindPublish, From: "order-service", To: partitionID(r.Partition),
		MsgID: out.id, Detail: flow.Detail{Partition: r.Partition, Key: out.key, Payload: out.payload}})
}

// netWatch remembers a client's newest network failure, so the view can say
// "retrying: connection refused" while records wait.
type netWatch struct {
	mu   sync.Mutex
	at   int64 // unix nanoseconds
	text string
}

func (w *netWatch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	w.failed(err)
}

func (w *netWatch) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	w.failed(err)
}

func (w *netWatch) failed(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at, w.text = time.Now().UnixNano(), err.Error()
}

func (w *netWatch) last() (int64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at, w.text
}
