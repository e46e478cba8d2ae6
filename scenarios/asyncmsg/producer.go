package asyncmsg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

// maxBuffered is how many records may wait in the producer; past it
// order-service's sends are refused rather than blocking it.
const maxBuffered = 10_000

// orderService is the article's producer: one kgo client that writes order
// events to the topic. It is replaced whole when acks, linger or the
// delivery timeout change, because a kgo client's options are fixed when it
// is built.
type orderService struct {
	cl   *kgo.Client
	acks string
	// timeout is the delivery timeout: how long kgo retries a record
	// through an outage before it fails it, and with it every record
	// buffered for the same partition.
	timeout time.Duration
	net     *netWatch
	sent    atomic.Int64 // records handed to the client, for the send rate

	answers atomic.Int64 // records the broker took, for the view's "retrying"
	full    atomic.Int64 // unix nanoseconds of the newest refused send

	// promise takes the broker's answer for every record: what differs per
	// record travels with the record (see sending), so the client gets one
	// func for all of them.
	promise func(*kgo.Record, error)
}

func (s *Scenario) startProducer(rt *runtime, set settings) error {
	o := &orderService{acks: set.acks, timeout: time.Duration(set.deliverySecs) * time.Second}
	o.net = &netWatch{answers: &o.answers}
	o.promise = func(r *kgo.Record, err error) { s.produced(o, r, err) }
	acks := map[string]kgo.Acks{"all": kgo.AllISRAcks(), "leader": kgo.LeaderAck(), "none": kgo.NoAck()}[set.acks]
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.Dialer(rt.paths.Dial),
		kgo.ClientID("order-service"),
		kgo.DefaultProduceTopic(s.topic),
		// With idempotent writes a producer was still blocked 40 s into an
		// outage, past its context and delivery timeout (STACK-NOTES);
		// without them the delivery timeout is kept.
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(time.Duration(set.lingerMS)*time.Millisecond),
		kgo.RecordDeliveryTimeout(o.timeout),
		kgo.MaxBufferedRecords(maxBuffered),
		// New partitions must be seen within a second, not after the
		// default five minutes.
		kgo.MetadataMaxAge(time.Second),
		kgo.MetadataMinAge(500*time.Millisecond),
		kgo.WithHooks(o.net, publishHook{s}),
		// No KIP-714 telemetry to the broker, from this client or any other
		// here: it shows nowhere and kept ~2 MiB of gzip state a lab.
		kgo.DisableClientMetrics(),
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

// stopProducer flushes what it can for two seconds, or until ctx ends, and
// closes the producer; records still buffered then fail and are counted as
// failed.
func (s *Scenario) stopProducer(ctx context.Context) {
	s.mu.Lock()
	o := s.producer
	s.producer = nil
	s.mu.Unlock()
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	o.cl.Flush(ctx)
	o.cl.Close()
}

// runOrderService is order-service's main loop: it sends at the learner's rate,
// and when flushing after every record is slower than that rate it simply
// falls behind — the cost the article's flush() has. A burst (send-1000) is
// sent beside the rate, as fast as the producer takes it.
func (s *Scenario) runOrderService(ctx context.Context) {
	tick := time.NewTimer(10 * time.Millisecond)
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
		rate, flush, o, burst, run := s.set.rate, s.set.flushEach, s.producer, s.burst, s.burstRun
		s.mu.Unlock()
		if o == nil {
			owed = 0 // being replaced: a burst waits for the new one
		} else {
			owed = s.sendDue(ctx, o, owed, rate, elapsed, now, flush, burst, run)
		}
		tick.Reset(untilDue(owed, rate))
	}
}

// sendDue sends what a burst still has to send and what is due at the rate,
// for at most 100 ms, and returns what is still owed.
func (s *Scenario) sendDue(ctx context.Context, o *orderService, owed float64, rate int, elapsed time.Duration, now time.Time, flush bool, burst int, run *burstRun) float64 {
	// Never owe more than a second: a producer that fell behind does
	// not burst to catch up. Knobs are read again every 100 ms even
	// when flushing keeps it behind.
	owed = min(owed+float64(rate)*elapsed.Seconds(), float64(rate))
	// t is when the last chunk was handed over (or flushed): the
	// clock read sendOrders does anyway.
	sent, t := 0, now
	for sent < burst && ctx.Err() == nil && t.Sub(now) < 100*time.Millisecond {
		// Taken from the burst before they are handed over, not after:
		// a press meanwhile then counts this chunk in neither the burst
		// nor the producer's buffer (at most a chunk, which a full
		// buffer refuses and counts) rather than in both, which refused
		// presses with room left.
		s.mu.Lock()
		k := min(chunk(burst-sent, flush), s.burst) // shutdown may have dropped it meanwhile
		s.burst -= k
		s.mu.Unlock()
		if k == 0 {
			break
		}
		t = s.sendOrders(ctx, o, flush, k, run)
		sent += k
	}
	for owed >= 1 && ctx.Err() == nil && t.Sub(now) < 100*time.Millisecond {
		k := chunk(int(owed), flush)
		t = s.sendOrders(ctx, o, flush, k, nil)
		owed -= float64(k)
	}
	if sent > 0 {
		s.mu.Lock()
		more := s.burst > 0
		s.mu.Unlock()
		if more {
			s.wakeProducer() // go on at once, not at the next tick
		}
	}
	return owed
}

// untilDue is how long order-service sleeps: until its next event at rate
// is due (waking every 10 ms instead, a hundred sandboxes' order-services
// would wake ten thousand times a second to send two thousand events),
// and at most 100 ms, so that it sees a changed knob.
func untilDue(owed float64, rate int) time.Duration {
	const least, most = 10 * time.Millisecond, 100 * time.Millisecond
	if rate <= 0 {
		return most
	}
	// A millisecond more, so that the event is due when it wakes.
	d := time.Duration(math.Ceil((1-owed)/float64(rate)*float64(time.Second))) + time.Millisecond
	return min(max(d, least), most)
}

// sendBurst has order-service send n more order events at once, beside the
// rate. A burst that would not fit in the producer's buffer beside what
// waits there and what earlier bursts still have to send is refused whole:
// pressing the button again and again during an outage or while flushing
// after every record would otherwise pile up events only to refuse them.
func (s *Scenario) sendBurst(n int) error {
	if _, err := s.running(); err != nil {
		return err
	}
	s.mu.Lock()
	buffered := 0
	if s.producer != nil {
		buffered = int(s.producer.cl.BufferedProduceRecords())
	}
	if s.burst+buffered+n > maxBuffered {
		burst := s.burst
		s.mu.Unlock()
		return flow.Errorf(flow.Unavailable, "order-service cannot take %d more order events now: %d wait in the producer's buffer and %d of earlier bursts are still to send, and the buffer holds %d; try again once it drains",
			n, buffered, burst, maxBuffered)
	}
	s.burst += n
	left := s.burst
	if s.burstRun == nil {
		s.burstRun = &burstRun{start: time.Now()}
	}
	s.burstRun.n += n
	s.burstRun.left.Add(int64(n))
	s.mu.Unlock()
	s.wakeProducer()
	s.state("order-service", "sending", fmt.Sprintf("a burst of %d order events at once, beside the rate (%d to send)", n, left))
	return nil
}

// burstRun is a burst on its way: from the first press to the broker's
// answer for its last event. Presses while one is on its way join it.
type burstRun struct {
	start time.Time
	n     int          // order events asked for
	left  atomic.Int64 // events without the producer's answer yet
}

// lastBurst is the newest burst done: how many events and how long from the
// press to the broker's answer for the last of them.
type lastBurst struct {
	n    int
	took time.Duration
}

// burstAnswered counts the producer's answer (an ack, a failure, a refusal)
// for one event of run; the last one ends it.
func (s *Scenario) burstAnswered(run *burstRun) {
	if run.left.Add(-1) > 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// A press may have joined it since: it ends with its last answer.
	if s.burstRun == run && run.left.Load() == 0 {
		s.burstRun, s.last = nil, lastBurst{n: run.n, took: now.Sub(run.start)}
	}
}

func (s *Scenario) wakeProducer() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// maxChunk is how many order events order-service builds at once: one
// ledger lock, three allocations and one clock read for all of them, which
// keeps a burst's hand-over to the producer close to that of a bare kgo
// loop. Kafka stamps records in milliseconds; a chunk takes microseconds.
const maxChunk = 64

// chunk is how many of want events to build next: one at a time when each
// is flushed, as in the article.
func chunk(want int, flush bool) int {
	if flush {
		return 1
	}
	return min(want, maxChunk)
}

// sendOrders produces the next k order events, of burst run or of the rate
// (nil), and, as in the article, flushes after them when asked to. It returns when it handed them over, or
// when the flush ended.
func (s *Scenario) sendOrders(ctx context.Context, o *orderService, flush bool, k int, run *burstRun) time.Time {
	outs := s.newSendings(ctx, s.ledger.add(waiting, k), k, run)
	start := outs[0].rec.Timestamp // outs may be done with before TryProduce returns
	o.sent.Add(int64(k))
	for i := range outs {
		o.cl.TryProduce(ctx, &outs[i].rec, o.promise)
	}
	if !flush {
		return start
	}
	fctx, cancel := context.WithTimeout(ctx, o.timeout+time.Second)
	o.cl.Flush(fctx)
	cancel()
	return time.Now()
}

// sending is one order event on its way through the producer: the kgo
// record and what its publish and ack hops need. The record's Context is
// the sending itself (kgo's place for what a record carries to its hooks
// and its promise), so the hooks find the message id, key and payload
// without building them again. It is a context derived from the one
// order-service produces with: kgo still sees that context's cancellation.
type sending struct {
	context.Context
	rec   kgo.Record // its Timestamp is when order-service handed it over
	n     uint64     // the ledger's number for the event
	burst *burstRun  // the burst it is part of, nil for the rate's
	// drawn is what the hops of an event the view draws carry (see
	// flow.Emitter.Sample); nil for the others.
	drawn *drawnEvent
}

// drawnEvent is what a drawn event's hops show: its message id, key and
// payload as strings, and when order-service handed it over to the
// microsecond (kgo keeps the record's time to the millisecond).
type drawnEvent struct {
	id, key, payload string
	start            time.Time
}

// newSendings builds order-service's events first, first+1, … k of them:
// the sendings and the bytes kgo sends (key and value of each, and beside
// them the message id, which is not sent: a member knows this run's events
// by their bytes) in two allocations. Only a drawn event gets its strings
// for the view.
func (s *Scenario) newSendings(ctx context.Context, first uint64, k int, run *burstRun) []sending {
	outs := make([]sending, k)
	// Event i's key starts at at[i][0], its value at at[i][1], its id at
	// at[i][2], and it ends where event i+1 starts.
	var at [maxChunk + 1][3]int
	b := make([]byte, 0, k*96) // an order event and its id take about 80
	for i := range outs {
		n := first + uint64(i)
		at[i][0] = len(b)
		b, at[i][1] = appendOrder(b, n)
		at[i][2] = len(b)
		b = append(b, s.runPrefix...)
		b = strconv.AppendUint(b, n, 10)
	}
	at[k][0] = len(b)
	now := time.Now()
	// Whether the view draws an event is judged by its birth to the
	// millisecond, as Kafka keeps a record's time: a member judges it by
	// the same moment.
	born := time.UnixMilli(now.UnixMilli())
	for i := range outs {
		out := &outs[i]
		key, v, id, end := at[i][0], at[i][1], at[i][2], at[i+1][0]
		out.Context, out.n, out.burst = ctx, first+uint64(i), run
		if s.cfg.Emit.DrawsBytes(b[id:end], born) {
			str := string(b[key:end])
			out.drawn = &drawnEvent{id: str[id-key:], key: str[:v-key], payload: str[v-key : id-key], start: now}
		}
		out.rec = kgo.Record{
			Key:   b[key:v:v],
			Value: b[v:id:id],
			// What kgo would stamp itself; the publish hop reuses it
			// rather than read the clock again.
			Timestamp: now,
			Context:   out,
		}
	}
	return outs
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

// produced is the producer's answer for one record. It runs hot, in the
// producer's one promise goroutine: only a record whose hops are drawn costs
// a clock read and an event.
func (s *Scenario) produced(o *orderService, r *kgo.Record, err error) {
	out := r.Context.(*sending) // every record of o.cl is a sending
	confirmed := o.acks != "none"
	if errors.Is(err, kgo.ErrMaxBuffered) {
		o.full.Store(time.Now().UnixNano())
		s.ledger.refuse(out.n)
	} else {
		s.ledger.produced(out.n, err, confirmed, r.Partition, r.Offset)
	}
	s.window.producedOK(err == nil)
	if err == nil {
		o.answers.Add(1)
	}
	if out.burst != nil {
		s.burstAnswered(out.burst)
	}
	d := out.drawn
	if d == nil {
		return
	}
	now := time.Now()
	took := now.Sub(d.start)
	if err != nil {
		s.cfg.Emit.EmitDrawn(flow.Event{Time: now, Kind: flow.KindError, From: "order-service", To: "orders", MsgID: d.id,
			Detail: flow.Detail{Key: d.key, Error: err.Error(), Outcome: "failed", LatencyMS: ms(took)}})
		return
	}
	if !confirmed {
		return // with acks none the broker never answers: there is no ack to draw
	}
	s.cfg.Emit.EmitDrawn(flow.Event{Time: now, Kind: flow.KindAck, From: partitionID(r.Partition), To: "order-service", MsgID: d.id,
		Detail: flow.Detail{Partition: r.Partition, Offset: r.Offset, Key: d.key, LatencyMS: ms(took), Outcome: "ok"}})
}

// producerStatus is what order-service's producer says of itself now.
type producerStatus struct {
	state    string
	buffered int64
	err      string        // what failed, while the broker has not answered since
	silent   time.Duration // how long it has had no answer, with err
	timeout  time.Duration // its delivery timeout
}

// status is what order-service's producer says now; burst is how many
// events of a burst are still to be handed to it.
func (o *orderService) status(rate, burst int) producerStatus {
	ps := producerStatus{buffered: o.cl.BufferedProduceRecords(), timeout: o.timeout}
	unanswered, errText, since := o.net.sinceAnswer()
	switch {
	case ps.buffered > 0 && unanswered:
		ps.state, ps.err, ps.silent = "retrying", errText, time.Since(since)
	case time.Now().UnixNano()-o.full.Load() < int64(time.Second):
		ps.state = "buffer full"
	case rate == 0 && burst == 0 && ps.buffered == 0:
		ps.state = "idle"
	default:
		ps.state = "sending"
	}
	return ps
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

// eventOf is orderOf backwards: the n of order's event of the given step.
func eventOf(order, step int) uint64 {
	o := order - 1
	return uint64(o/20*60 + step*20 + o%20 + 1)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// publishHook draws the publish hop when kgo has picked the record's
// partition, which happens only inside the client. The hop is timed when
// order-service handed the record over (its timestamp).
type publishHook struct{ s *Scenario }

func (h publishHook) OnProduceRecordPartitioned(r *kgo.Record, _ int32) {
	out := r.Context.(*sending) // every record of order-service's client is a sending
	d := out.drawn
	if d == nil {
		return
	}
	h.s.cfg.Emit.EmitDrawn(flow.Event{Time: r.Timestamp, Kind: flow.KindPublish, From: "order-service", To: partitionID(r.Partition),
		MsgID: d.id, Detail: flow.Detail{Partition: r.Partition, Key: d.key, Payload: d.payload}})
}

// netWatch remembers a client's newest network failure, so the view can say
// "retrying: connection refused" while records wait.
type netWatch struct {
	// answers counts the broker's answers to a producer's records; nil
	// for a consumer.
	answers *atomic.Int64

	// okAt is when the broker last answered a request, in unix
	// nanoseconds: every read, so it is kept without the lock.
	okAt atomic.Int64

	mu        sync.Mutex
	at        int64 // unix nanoseconds
	text      string
	answersAt int64 // *answers at the newest failure
	// since is the first failure after the broker's newest answer: how
	// long a producer has had no answer.
	since time.Time
}

func (w *netWatch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	w.failed(err)
}

func (w *netWatch) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		w.okAt.Store(time.Now().UnixNano())
		return
	}
	w.failed(err)
}

// failed notes a network failure. A read kgo gave up on itself is not one:
// it cancels a fetch in flight when a member's assignment or fetch session
// changes, which a busy member sees often, and reports the read as
// "context canceled".
func (w *netWatch) failed(err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.answers != nil {
		n := w.answers.Load()
		if w.text == "" || n != w.answersAt {
			w.since = now
		}
		w.answersAt = n
	}
	w.at, w.text = now.UnixNano(), err.Error()
}

// sinceAnswer reports whether the broker answered no record since the
// newest failure, what the failure was, and since when there was none.
func (w *netWatch) sinceAnswer() (bool, string, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text != "" && w.answers.Load() == w.answersAt, w.text, w.since
}

// unreachable reports whether a consumer gets no answer from the broker: its
// newest failure is newer than its newest answer, and that answer is older
// than noAnswer. A member's fetch is answered at least every FetchMaxWait
// (500 ms) however idle it is, so one that lost a connection and dialed
// again at once, as a busy member may, is not unreachable.
func (w *netWatch) unreachable(now time.Time) bool {
	w.mu.Lock()
	errAt := w.at
	w.mu.Unlock()
	okAt := w.okAt.Load()
	return errAt > okAt && now.UnixNano()-okAt > int64(noAnswer)
}

// noAnswer is how long a member may go without an answer from the broker
// before the view calls it unreachable: twice its longest wait for a fetch.
const noAnswer = time.Second
