package eventdriven

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// consumer is one of inventory, email and analytics: it binds its own queue to
// the exchange and processes order_placed events, in the article's way
// (exclusive temporary queue, auto-ack) or the reliable way (durable named
// queue, ack after processing), as the learner sets it.
type consumer struct {
	s            *Scenario
	index        int // its copy in the ledger
	name         string
	durableQueue string
	status       *rabbit.Status
	wake         chan struct{} // the learner changed something
	tried        chan struct{} // closed once its first session subscribed or failed, or it was not to run
	firstTry     sync.Once

	mu            sync.Mutex       // guards the fields below
	set           consumerSettings // as the learner set them
	active        consumerSettings // as the running session uses them
	want          string           // running, stopped or crashed: what the learner asked for
	restarts      int              // bumped by restart, so that a running session starts afresh
	queue         string           // the queue it consumes from now; "" without a session
	durableExists bool             // its durable queue is declared and not yet deleted
	ready         int              // messages ready in its queue, from the broker
	backlog       rabbit.Backlog   // ready, from one reading to the next
	catching      bool             // its queue's backlog is draining
	onQueue       int              // consumers on its queue, from the broker
	held          int              // delivered to it and not yet settled
	crashAfter    bool             // crash right after processing the next event, before its ack
}

type consumerSettings struct {
	processing time.Duration
	prefetch   int
	manual     bool // ack after processing; else auto-ack, as in the article
	durable    bool // durable named queue; else exclusive temporary, as in the article
}

// articleConsumer is the article's consumer: exclusive temporary queue,
// auto_ack=True.
var articleConsumer = consumerSettings{processing: 50 * time.Millisecond, prefetch: 10}

// failurePause is how long a consumer takes, at least, to give up on a poison
// message. A real consumer rejects at once and the broker sends the message
// straight back; the pause keeps that requeue loop watchable instead of
// burning a core.
const failurePause = 100 * time.Millisecond

const (
	wantRunning = "running"
	wantStopped = "stopped"
	wantCrashed = "crashed"
)

func newConsumer(s *Scenario, index int, name string) *consumer {
	return &consumer{
		s:            s,
		index:        index,
		name:         name,
		durableQueue: s.lab.Name("ecommerce." + name),
		status:       s.broker.NewStatus(name, "starting"),
		wake:         make(chan struct{}, 1),
		tried:        make(chan struct{}),
		set:          articleConsumer,
		want:         wantRunning,
	}
}

// run keeps the consumer doing what the learner wants until ctx ends.
func (c *consumer) run(ctx context.Context) {
	rabbit.Retry(ctx, c.status, c.wake, func() (bool, error) {
		c.mu.Lock()
		want, set, restarts := c.want, c.set, c.restarts
		c.mu.Unlock()
		if want != wantRunning {
			c.triedOnce()
			c.status.Set(want, nil)
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			return false, nil
		}
		defer c.triedOnce()
		return c.session(ctx, set, restarts)
	})
}

// triedOnce says that the consumer's queue is bound, or will not be soon.
func (c *consumer) triedOnce() { c.firstTry.Do(func() { close(c.tried) }) }

// delivery is a message in the consumer's hands, under the id the view knows.
type delivery struct {
	amqp.Delivery
	id       string
	external bool
	poison   bool
}

// session connects, declares the topology, consumes and processes until the
// connection fails (an error), or ctx ends or the learner changes something
// (nil). up says whether it got as far as consuming.
func (c *consumer) session(ctx context.Context, set consumerSettings, restarts int) (up bool, err error) {
	c.status.Set("connecting", nil)
	conn, err := c.s.broker.Dial(ctx, c.name)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		watching.Wait()
	}()

	ch, queue, deliveries, err := c.subscribe(conn, set)
	if err != nil {
		c.closed(nil, nil, set, "could not subscribe")
		return false, err
	}
	if !set.durable {
		// The watcher cannot see an exclusive queue: only its own
		// connection may, so the consumer reports its depth itself.
		watching.Go(func() { c.watchOwnQueue(sctx, conn, queue) })
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	c.mu.Lock()
	c.queue, c.active = queue, set
	c.mu.Unlock()
	c.status.Set("up", nil)
	c.triedOnce()

	var waiting backlog  // received from the broker, not yet processed
	var current delivery // the one being processed
	var busy *delivery   // &current while its processing time runs
	var done <-chan time.Time
	first := !set.durable // the first message of a fresh exclusive queue
	for {
		for busy == nil && waiting.pop(&current) {
			took := c.processingTime(&current, set)
			if took == 0 {
				// No timer: at full speed a timer per message costs a third of the throughput.
				if c.finish(&current, set) {
					return c.crashAfterProcessing(conn, &current, &waiting, set)
				}
				continue
			}
			busy, done = &current, time.After(took)
		}
		select {
		case <-ctx.Done():
			conn.Close()
			c.closed(busy, waiting.all(), set, "lost when flowlab stopped: auto-acked, never processed")
			return true, nil
		case err := <-closed:
			c.closed(busy, waiting.all(), set, "its connection was lost")
			return true, rabbit.ConnectionLost(err)
		case d, ok := <-deliveries:
			if !ok {
				conn.Close()
				c.closed(busy, waiting.all(), set, "its channel closed")
				return true, fmt.Errorf("%s's channel closed", c.name)
			}
			waiting.push(c.received(d, &first))
		case <-done:
			if c.finish(busy, set) {
				return c.crashAfterProcessing(conn, busy, &waiting, set)
			}
			busy, done = nil, nil
		case <-c.wake:
			c.mu.Lock()
			want, now, again := c.want, c.set, c.restarts != restarts
			c.mu.Unlock()
			switch {
			case want == wantCrashed:
				// Mid-processing: the socket goes, nothing is acked.
				conn.Drop()
				c.closed(busy, waiting.all(), set, "lost in the crash: auto-acked, never processed")
				return true, nil
			case want == wantStopped || again || now.manual != set.manual || now.durable != set.durable || (set.manual && now.prefetch != set.prefetch):
				c.leave(conn, ch, deliveries, &waiting, &first)
				c.closed(busy, waiting.all(), set, "lost when the consumer stopped: auto-acked, never processed")
				return true, nil
			}
			set.processing = now.processing
			c.mu.Lock()
			c.active = set
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.held = len(waiting.all())
		if busy != nil {
			c.held++
		}
		c.mu.Unlock()
	}
}

// backlog holds what a consumer received and has not yet processed, oldest
// first. It reuses its array: at full speed every message passes through it,
// and a slice cut from the front would allocate again on every append.
type backlog struct {
	held []delivery
	next int // held[next:] are waiting
}

func (b *backlog) push(d delivery) { b.held = append(b.held, d) }

// pop moves the oldest delivery into d, and reports whether there was one.
func (b *backlog) pop(d *delivery) bool {
	if b.next == len(b.held) {
		return false
	}
	*d = b.held[b.next]
	b.held[b.next] = delivery{} // its body is d's now
	b.next++
	if b.next == len(b.held) {
		b.held, b.next = b.held[:0], 0
	}
	return true
}

// all are the deliveries waiting, oldest first.
func (b *backlog) all() []delivery { return b.held[b.next:] }

// subscribe declares everything this consumer relies on, as a service must
// after every reconnect, and starts consuming.
func (c *consumer) subscribe(conn *rabbit.Conn, set consumerSettings) (ch *amqp.Channel, queue string, deliveries <-chan amqp.Delivery, err error) {
	if ch, err = conn.Channel(); err != nil {
		return nil, "", nil, err
	}
	if queue, err = c.declareQueue(ch, set); err != nil {
		return nil, "", nil, err
	}
	if set.manual {
		if err := ch.Qos(set.prefetch, 0, false); err != nil {
			return nil, "", nil, err
		}
	}
	if deliveries, err = ch.Consume(queue, c.name, !set.manual, false, false, false, nil); err != nil {
		return nil, "", nil, err
	}
	return ch, queue, deliveries, nil
}

// declareQueue declares the exchange, the dead-letter exchange and DLQ, and
// the consumer's own queue bound to the exchange, and returns its name.
func (c *consumer) declareQueue(ch *amqp.Channel, set consumerSettings) (string, error) {
	if err := declareExchange(ch, c.s.exchange); err != nil {
		return "", err
	}
	if err := c.s.declareDeadLetters(ch); err != nil {
		return "", err
	}
	// Every queue names the dead-letter exchange, so that switching poison
	// handling never needs a queue declared with other arguments.
	args := amqp.Table{"x-dead-letter-exchange": c.s.dlx}
	var q amqp.Queue
	var err error
	var binding uint64 // the first send that may have raced the binding
	if set.durable {
		q, err = ch.QueueDeclare(c.durableQueue, true, false, false, false, args)
	} else {
		if err := c.deleteDurableQueue(ch); err != nil {
			return "", err
		}
		// From here on a publish may reach the new queue: its copies are in
		// flight until a delivery or the queue's depth shows which ones made
		// it.
		binding = c.s.ledger.nextSend()
		c.s.ledger.setPresent(c.index, true)
		q, err = ch.QueueDeclare("", false, false, true, false, args)
	}
	if err != nil {
		return "", err
	}
	if err := ch.QueueBind(q.Name, "", c.s.exchange, false, nil); err != nil {
		return "", err
	}
	if !set.durable {
		c.s.ledger.doubtBinding(c.index, binding, time.Now())
	}
	if set.durable {
		c.s.ledger.setPresent(c.index, true)
		c.mu.Lock()
		c.durableExists = true
		c.mu.Unlock()
	}
	return q.Name, nil
}

// deleteDurableQueue removes the durable queue left from when this consumer
// used one, so that it does not fill up unread for ever; what it held is lost.
func (c *consumer) deleteDurableQueue(ch *amqp.Channel) error {
	c.mu.Lock()
	exists := c.durableExists
	c.mu.Unlock()
	if !exists {
		return nil
	}
	if _, err := ch.QueueDelete(c.durableQueue, false, false, false); err != nil {
		return err
	}
	c.mu.Lock()
	c.durableExists = false
	c.mu.Unlock()
	lost := c.s.ledger.queueGone(c.index, "deleted with the durable queue when the queue kind changed")
	c.s.noteLost(nodeExchange, queueNode(c.name), lost, "deleted with the durable queue")
	return nil
}

// received records a delivery and shows it. An outside message gets its id
// here, at first sight.
func (c *consumer) received(d amqp.Delivery, first *bool) delivery {
	dl := delivery{Delivery: d, id: d.MessageId, poison: !wellFormed(d.Body)}
	known, attempt := false, 1
	if d.MessageId != "" {
		var lost []string
		known, attempt, lost = c.s.ledger.deliver(c.index, d.MessageId, d.Redelivered)
		c.s.noteLost(nodeExchange, queueNode(c.name), lost, lostBeforeLater)
	}
	if known && *first && !d.Redelivered {
		*first = false
		lost := c.s.ledger.sweepBefore(c.index, d.MessageId)
		c.s.noteLost(nodeExchange, queueNode(c.name), lost, "published before the new queue was bound")
	}
	detail := flow.Detail{Queue: c.name, Redeliver: d.Redelivered}
	if !known {
		dl.external = true
		id, firstSight := c.s.externals.name(c.index, d.MessageId, d.Body)
		dl.id = id
		detail.External = true
		detail.Payload = shorten(d.Body)
		detail.Raw = !json.Valid(d.Body)
		if firstSight {
			c.s.ledger.countExternal()
			published := detail
			published.Queue = ""
			c.s.emit.Emit(flow.Event{Kind: flow.KindPublish, From: nodeOutside, To: nodeExchange, MsgID: id, Detail: published})
		}
		c.s.emit.Emit(flow.Event{Kind: flow.KindRoute, From: nodeExchange, To: queueNode(c.name), MsgID: id, Detail: detail})
	}
	c.s.emit.Emit(flow.Event{Kind: flow.KindDeliver, From: queueNode(c.name), To: c.name, MsgID: dl.id, Attempt: attempt, Detail: detail})
	return dl
}

// wellFormed reports whether body is an event the consumer can process:
// {"type": "order_placed", "data": {"order_id": …}}. Anything else, JSON or
// not, is poison; it never crashes the consumer.
func wellFormed(body []byte) bool {
	if asOrderServiceWrites(body) {
		return true
	}
	var e struct {
		Type string `json:"type"`
		Data struct {
			OrderID json.RawMessage `json:"order_id"`
		} `json:"data"`
	}
	return json.Unmarshal(body, &e) == nil && e.Type == "order_placed" && len(e.Data.OrderID) > 0 && string(e.Data.OrderID) != "null"
}

// asOrderServiceWrites reports whether body is exactly what order-service's
// orderEvent writes, byte for byte: one top-level "type" and "data", one
// "order_id", numbers and skus in the only forms it writes. Such a body is
// well-formed, and saying so takes a few comparisons where json.Unmarshal
// takes a microsecond and ten allocations, on every copy of every event.
// Anything else (a poison event, an outside client's) takes the general path.
func asOrderServiceWrites(body []byte) bool {
	r := body
	if !skip(&r, `{"type":"order_placed","data":{"order_id":`) || !skipInt(&r) || !skip(&r, `,"items":[`) {
		return false
	}
	for {
		if !skip(&r, `{"sku":"`) || !skipSKU(&r) || !skip(&r, `","qty":`) || !skipInt(&r) || !skip(&r, `}`) {
			return false
		}
		if !skip(&r, `,`) {
			break
		}
	}
	if !skip(&r, `],"total":`) || !skipInt(&r) {
		return false
	}
	if skip(&r, `.`) && !skipDigits(&r) {
		return false
	}
	return string(r) == `}}`
}

// skip takes want off the front of r, if r starts with it.
func skip(r *[]byte, want string) bool {
	if len(*r) < len(want) || string((*r)[:len(want)]) != want {
		return false
	}
	*r = (*r)[len(want):]
	return true
}

// skipInt takes a JSON integer of one or more digits off the front of r: 0,
// or no leading zero.
func skipInt(r *[]byte) bool {
	if len(*r) > 0 && (*r)[0] == '0' {
		*r = (*r)[1:]
		return len(*r) == 0 || (*r)[0] < '0' || (*r)[0] > '9'
	}
	return skipDigits(r)
}

func skipDigits(r *[]byte) bool {
	n := 0
	for n < len(*r) && (*r)[n] >= '0' && (*r)[n] <= '9' {
		n++
	}
	*r = (*r)[n:]
	return n > 0
}

// skipSKU takes a sku as order-service writes them (lower-case letters and
// dashes, nothing JSON would escape) off the front of r.
func skipSKU(r *[]byte) bool {
	n := 0
	for n < len(*r) && ((*r)[n] >= 'a' && (*r)[n] <= 'z' || (*r)[n] == '-') {
		n++
	}
	*r = (*r)[n:]
	return n > 0
}

func (c *consumer) processingTime(d *delivery, set consumerSettings) time.Duration {
	if d.poison && set.manual && !c.s.deadLetteringPoison() {
		return max(set.processing, failurePause)
	}
	return set.processing
}

// finish ends the processing of d: ack it, or reject a poison message with
// requeue or to the dead-letter exchange. With auto-ack the broker forgot d at
// delivery, so a poison message is simply lost. It reports whether the
// consumer crashes now, d processed and not acked, as the learner asked.
func (c *consumer) finish(d *delivery, set consumerSettings) (crash bool) {
	ev := flow.Event{From: c.name, To: queueNode(c.name), MsgID: d.id, Detail: flow.Detail{Queue: c.name, External: d.external}}
	if !d.poison {
		ev.Detail.Duplicate = c.s.ledger.processed(c.index, d.id)
	}
	if set.manual && !d.poison && c.takeCrashAfter() {
		outcome := "processed; the consumer crashed before its ack"
		if ev.Detail.Duplicate {
			outcome = "processed again; the consumer crashed before its ack"
		}
		c.s.emit.Emit(flow.Event{Kind: flow.KindState, From: c.name, To: c.name, MsgID: d.id,
			Detail: flow.Detail{Queue: c.name, External: d.external, Duplicate: ev.Detail.Duplicate, Outcome: outcome}})
		return true
	}
	switch {
	case !set.manual && !d.poison:
		c.s.ledger.settle(c.index, d.id, acked, "")
		ev.Kind, ev.Detail.Outcome = flow.KindAck, "processed (auto-acked at delivery)"
	case !set.manual:
		c.s.ledger.settle(c.index, d.id, dropped, "poison: could not be processed, and auto-ack had already removed it")
		ev.Kind, ev.From, ev.To = flow.KindDrop, queueNode(c.name), c.name
		ev.Detail.Outcome = "poison, auto-acked: lost"
	case !d.poison:
		if err := d.Ack(false); err != nil {
			return false // the connection is gone: the broker will deliver it again
		}
		c.s.ledger.settle(c.index, d.id, acked, "")
		ev.Kind, ev.Detail.Outcome = flow.KindAck, "acked after processing"
	case c.s.deadLetteringPoison():
		if err := d.Nack(false, false); err != nil {
			return false
		}
		c.s.ledger.settle(c.index, d.id, deadLettered, "")
		ev.Kind, ev.To, ev.Detail.Outcome = flow.KindDeadLetter, nodeDLQ, "poison: rejected to the dead-letter exchange"
	default:
		if err := d.Nack(false, true); err != nil {
			return false
		}
		c.s.ledger.settle(c.index, d.id, pending, "")
		ev.Kind, ev.Detail.Outcome = flow.KindRequeue, "poison: rejected with requeue, it will come back"
	}
	c.s.emit.Emit(ev)
	return false
}

// takeCrashAfter says whether the learner asked the consumer to crash after
// this event, and takes the request.
func (c *consumer) takeCrashAfter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crashAfter {
		return false
	}
	c.crashAfter, c.want = false, wantCrashed
	return true
}

// crashAfterProcessing drops the connection with d processed and unacked:
// under manual ack the broker delivers d and everything waiting again.
func (c *consumer) crashAfterProcessing(conn *rabbit.Conn, d *delivery, waiting *backlog, set consumerSettings) (bool, error) {
	conn.Drop()
	c.closed(d, waiting.all(), set, "lost in the crash")
	return true, nil
}

// leave stops consuming politely: cancel, take in what the broker had already
// sent, then close. Unacked messages go back to the queue.
func (c *consumer) leave(conn *rabbit.Conn, ch *amqp.Channel, deliveries <-chan amqp.Delivery, waiting *backlog, first *bool) {
	ch.Cancel(c.name, false)    // on failure the connection is gone, which ends deliveries too
	for d := range deliveries { // closed after cancel-ok, once what was sent is handed over
		waiting.push(c.received(d, first))
	}
	conn.Close()
}

// closed settles what the consumer held when its connection ended: with
// manual ack the broker delivers it again; with auto-ack it was lost, why. An
// exclusive queue dies with its connection, and everything still in it too.
func (c *consumer) closed(busy *delivery, backlog []delivery, set consumerSettings, why string) {
	held := backlog
	if busy != nil {
		held = append([]delivery{*busy}, backlog...)
	}
	for _, d := range held {
		if d.external {
			continue
		}
		if set.manual {
			c.s.ledger.release(c.index, d.id)
			continue
		}
		c.s.ledger.settle(c.index, d.id, dropped, why)
		c.s.emit.Emit(flow.Event{Kind: flow.KindDrop, From: queueNode(c.name), To: c.name, MsgID: d.id, Detail: flow.Detail{Queue: c.name, Outcome: why}})
	}
	if !set.durable {
		lost := c.s.ledger.queueGone(c.index, "deleted with the exclusive queue when its connection closed")
		c.s.noteLost(nodeExchange, queueNode(c.name), lost, "deleted with the exclusive queue")
	}
	c.mu.Lock()
	c.queue, c.held = "", 0
	if !set.durable {
		c.ready, c.onQueue = 0, 0
		c.backlog, c.catching = rabbit.Backlog{}, false
	}
	c.mu.Unlock()
}

// watchOwnQueue reads the depth of the consumer's exclusive queue once a
// second, over a channel of its own.
func (c *consumer) watchOwnQueue(ctx context.Context, conn *rabbit.Conn, queue string) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		at := time.Now()
		q, err := ch.QueueDeclarePassive(queue, false, false, true, false, nil)
		if err != nil {
			return // the connection is going; the session handles that
		}
		c.setDepth(q.Messages, q.Consumers)
		if q.Messages == 0 {
			c.queueEmpty(at)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueNote names the queue the consumer uses now, or will use.
func (c *consumer) queueNote() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.queue != "" && !c.active.durable:
		return c.queue + " (exclusive, server-named)"
	case c.queue != "" || c.set.durable:
		return c.durableQueue + " (durable)"
	}
	// No queue now: the note must not read as if one existed.
	return "exclusive, server-named: deleted when " + c.name + " disconnects"
}

// queueEmpty settles the doubt about copies the consumer never received: its
// queue, read at at, held no message ready.
func (c *consumer) queueEmpty(at time.Time) {
	c.s.noteLost(nodeExchange, queueNode(c.name), c.s.ledger.queueEmpty(c.index, at), lostQueueEmpty)
}

func (c *consumer) setDepth(ready, consumers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready, c.onQueue = ready, consumers
	c.catching = c.backlog.Read(ready)
}

// states is what the diagram shows on the consumer's queue and on itself:
// the settings a running consumer really uses, which lag the learner's by
// the moment it takes to resubscribe. Ready and consumers come from the
// broker; unacked is the consumer's own count, since a passive declare does
// not report it.
func (c *consumer) states(t copyTotals) (queue, self flow.NodeState) {
	st, errText := c.status.Get()
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.set
	if c.queue != "" {
		set = c.active
	}
	exists := c.queue != "" || c.durableExists
	durable := set.durable || (c.queue == "" && c.durableExists)
	// An absent queue holds nothing, whatever was last read of it; the
	// broker counts unacked deliveries only under manual ack, since
	// auto-acked ones left the queue on delivery.
	queue.State = "absent"
	var ready, consumers, unacked int
	if exists {
		queue.State = "up"
		ready, consumers = c.ready, c.onQueue
		if set.manual {
			unacked = c.held
		}
	}
	catching := exists && c.catching
	readyBadge := "ready %d"
	if catching {
		readyBadge = rabbit.CatchingUp
	}
	queue.Facts = []flow.Fact{
		flow.Flag("exists", exists, ""),
		flow.Count("ready", int64(ready), readyBadge).When(exists),
		flow.Flag("catching-up", catching, ""), // the ready badge says so
		flow.Count("consumers", int64(consumers), "consumers %d").When(exists),
		flow.Count("unacked", int64(unacked), "unacked %d").When(exists && set.manual),
		flow.Flag("durable", durable, "durable"),
		flow.Flag("exclusive", !durable, "exclusive temporary"),
	}

	ack := ackAuto
	if set.manual {
		ack = ackManual
	}
	self.State = st
	self.Facts = []flow.Fact{
		// "manual ack, prefetch 5" reads as one setting, so the prefetch
		// badge names the ack mode, and the ack mode is drawn only when auto.
		flow.Word("ack-mode", ack, "%s-ack").When(!set.manual),
		flow.Count("prefetch", int64(set.prefetch), "manual ack, prefetch %d").When(set.manual),
		flow.Count("in-memory", int64(c.held), "in memory %d").When(!set.manual),
		flow.Count("processing-ms", set.processing.Milliseconds(), "processing %d ms"),
		flow.Count("lost", t.dropped, "lost %d").When(t.dropped > 0),
		flow.Count("redelivered", t.redelivered, "redelivered %d").When(t.redelivered > 0),
		flow.Word("broker", c.s.broker.Name, "broker %s").When(errText != ""),
		flow.Word("error", errText, "%s"),
	}
	return queue, self
}
