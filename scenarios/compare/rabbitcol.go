package compare

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// Queue kinds and ack modes of the RabbitMQ column.
const (
	queueDurable   = "durable"   // a named durable queue per service
	queueExclusive = "exclusive" // the article's: queue_declare(queue='', exclusive=True)
	ackAfterWork   = "after-work"
	ackOnDelivery  = "on-delivery" // the article's auto_ack=True
)

// rabbitBuffer is how many orders may wait for order-service's publisher;
// past it an order is refused at once.
const rabbitBuffer = 1000

// rabbitColumn is the event-driven pattern: order-service publishes
// order_placed to a fanout exchange and answers its caller once the broker
// confirmed it; inventory and email consume from a queue each.
type rabbitColumn struct {
	books    *books
	inv      *inventoryState
	emit     *flow.Emitter
	run      string
	broker   *rabbit.Broker
	exchange string

	exclusive atomic.Bool // the queue kind
	autoAck   atomic.Bool // acked by the broker on delivery, before the work
	orders    chan pendingOrder
	pub       *rabbit.Status
	watcher   *rabbit.Watcher
	consumers [2]*rabbitConsumer // inventory, email
	setupOnce atomic.Bool        // the durable queues were declared and purged for this run
}

type pendingOrder struct {
	n     int64
	start time.Time
}

// rabbitConsumer is one service reading its queue.
type rabbitConsumer struct {
	node    string // its diagram node
	queue   string // its durable queue's name
	mark    uint8  // what its work marks in the books
	status  *rabbit.Status
	wake    chan struct{} // ends the session: the service went down or the queue kind changed
	wanted  func() bool   // whether the service runs now
	work    func(ctx context.Context, n int64) bool
	ready   atomic.Int64 // its durable queue's depth, as the watcher last read it
	exists  atomic.Bool  // its durable queue exists
	fresh   bool         // its durable queue was deleted: the next one starts empty (session goroutine only)
	scanned int64        // orders below it are known delivered or lost (session goroutine only)
	handled atomic.Int64 // deliveries handled, this run
}

func openRabbit(url string, lab *flow.Lab, b *books, inv *inventoryState, emit *flow.Emitter, run string) (*rabbitColumn, error) {
	br, err := rabbit.Open(rabbit.Config{URL: url, Path: "rabbitmq-compare-" + lab.ID, Node: "rabbitmq-exchange", Title: "Compare", Emit: emit})
	if err != nil {
		return nil, err
	}
	c := &rabbitColumn{books: b, inv: inv, emit: emit, run: run, broker: br,
		exchange: lab.Name("compare.order_placed"), orders: make(chan pendingOrder, rabbitBuffer)}
	c.pub = br.NewStatus("rabbitmq", "starting")
	c.watcher = br.NewWatcher(c.look)
	c.consumers[0] = &rabbitConsumer{node: "rabbitmq-inventory", queue: lab.Name("compare.inventory"), mark: markReserved,
		wanted: func() bool { return inv.up.Load() },
		work:   func(ctx context.Context, n int64) bool { return reserveStock(ctx, inv, b, n) }}
	c.consumers[1] = &rabbitConsumer{node: "rabbitmq-email", queue: lab.Name("compare.email"), mark: markEmailed,
		wanted: func() bool { return true },
		work:   func(_ context.Context, n int64) bool { return sendConfirmation(b, n) }}
	for _, s := range c.consumers {
		s.status = br.NewStatus(s.node, "starting")
		s.wake = make(chan struct{}, 1)
	}
	return c, nil
}

// serve runs the publisher, both consumers and the watcher until ctx ends.
func (c *rabbitColumn) serve(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.watcher.Run(ctx) })
	wg.Go(func() { rabbit.Retry(ctx, c.pub, nil, func() (bool, error) { return c.publish(ctx) }) })
	for _, s := range c.consumers {
		wg.Go(func() { rabbit.Retry(ctx, s.status, nil, func() (bool, error) { return c.consume(ctx, s) }) })
	}
	wg.Wait()
	c.broker.Close()
	// Orders still waiting for the publisher get their answer: no.
	for {
		select {
		case p := <-c.orders:
			c.books.answered(p.n, false, time.Since(p.start))
		default:
			return
		}
	}
}

// place hands one order to the publisher, or refuses it when the publisher
// is that far behind.
func (c *rabbitColumn) place() {
	n := c.books.place()
	select {
	case c.orders <- pendingOrder{n, time.Now()}:
	default:
		c.books.answered(n, false, 0)
	}
}

// setInventory ends inventory's session, whatever it is: it starts again
// as the inventory state now says.
func (c *rabbitColumn) setInventory() { rabbit.Signal(c.consumers[0].wake) }

// setQueue changes the queue kind and the ack mode: both consumers start
// over with them.
func (c *rabbitColumn) setQueue(exclusive, autoAck bool) {
	c.exclusive.Store(exclusive)
	c.autoAck.Store(autoAck)
	for _, s := range c.consumers {
		rabbit.Signal(s.wake)
	}
}

// publish is one session of order-service's publisher: publish each order
// persistent and answer its caller when the broker confirms it.
func (c *rabbitColumn) publish(ctx context.Context) (up bool, err error) {
	conn, err := rabbit.Dial(ctx, c.broker.ServiceURL, "compare order-service")
	if err != nil {
		return false, err
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := ch.Confirm(false); err != nil {
		return false, err
	}
	if err := ch.ExchangeDeclare(c.exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return false, err
	}
	// Before the first order, the durable queues exist, bound and empty:
	// what an earlier run left is not this run's.
	if !c.setupOnce.Load() && !c.exclusive.Load() {
		for _, s := range c.consumers {
			if _, err := ch.QueueDeclare(s.queue, true, false, false, false, nil); err != nil {
				return false, err
			}
			if err := ch.QueueBind(s.queue, "", c.exchange, false, nil); err != nil {
				return false, err
			}
			if _, err := ch.QueuePurge(s.queue, false); err != nil {
				return false, err
			}
		}
	}
	c.setupOnce.Store(true)
	c.pub.Set("up", nil)
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case e := <-closed:
			return true, rabbit.ConnectionLost(e)
		case p := <-c.orders:
			if err := c.publishOne(ctx, ch, p); err != nil {
				return true, err
			}
		}
	}
}

func (c *rabbitColumn) publishOne(ctx context.Context, ch *amqp.Channel, p pendingOrder) error {
	id := orderID("rabbitmq", p.n)
	c.emit.Emit(flow.Event{Kind: flow.KindPublish, From: "rabbitmq", To: "rabbitmq-exchange", MsgID: id})
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, c.exchange, "", false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, ContentType: "text/plain", MessageId: id, Type: "order_placed",
		Body: []byte(orderBody(c.run, p.n)),
	})
	if err != nil {
		c.books.answered(p.n, false, time.Since(p.start))
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	acked, err := conf.WaitContext(wctx)
	c.books.answered(p.n, err == nil && acked, time.Since(p.start))
	if err != nil {
		return errors.New("no confirm within 5 s")
	}
	return nil
}

// consume is one session of a consumer: while its service is down it waits;
// up, it declares its queue of the current kind and works through it.
func (c *rabbitColumn) consume(ctx context.Context, s *rabbitConsumer) (up bool, err error) {
	if !s.wanted() {
		s.status.Set("down", nil)
		select {
		case <-ctx.Done():
		case <-s.wake:
		}
		return true, nil
	}
	exclusive, autoAck := c.exclusive.Load(), c.autoAck.Load()
	conn, err := rabbit.Dial(ctx, c.broker.ServiceURL, "compare "+s.node)
	if err != nil {
		return false, err
	}
	defer conn.Close() // an exclusive queue goes with it
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := ch.ExchangeDeclare(c.exchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return false, err
	}
	queue := s.queue
	if exclusive {
		// The durable queue would fill for ever with nobody reading it.
		if _, err := ch.QueueDelete(s.queue, false, false, false); err != nil {
			return false, err
		}
		s.fresh = true
		// A queue made now gets only what is published from now on:
		// every order accepted before it and not yet done never will be.
		c.books.loseUndone(s.mark)
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return false, err
		}
		queue = q.Name
	} else {
		if s.fresh {
			c.books.loseUndone(s.mark)
			s.fresh = false
		}
		if _, err := ch.QueueDeclare(s.queue, true, false, false, false, nil); err != nil {
			return false, err
		}
	}
	if err := ch.QueueBind(queue, "", c.exchange, false, nil); err != nil {
		return false, err
	}
	if err := ch.Qos(20, 0, false); err != nil {
		return false, err
	}
	deliveries, err := ch.Consume(queue, "", autoAck, exclusive, false, false, nil)
	if err != nil {
		return false, err
	}
	s.status.Set("up", nil)
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-s.wake:
			return true, nil
		case e := <-closed:
			return true, rabbit.ConnectionLost(e)
		case d, ok := <-deliveries:
			if !ok {
				return true, errors.New("the broker cancelled the consumer")
			}
			n, mine := parseOrder(c.run, string(d.Body))
			if mine && (exclusive || autoAck) {
				// An earlier order that did not arrive before this one
				// never will: published between an exclusive queue's
				// declare and its bind it went nowhere; auto-acked to a
				// consumer that went away before working on it, it is
				// gone. Without redeliveries a queue delivers in order.
				c.books.loseSkipped(n, s.mark, &s.scanned)
			}
			if mine {
				dup := s.work(ctx, n)
				s.handled.Add(1)
				c.emit.Emit(flow.Event{Kind: flow.KindDeliver, From: "rabbitmq-exchange", To: s.node, MsgID: d.MessageId,
					Detail: flow.Detail{Queue: queue, Redeliver: d.Redelivered, Duplicate: dup}})
			}
			if !autoAck {
				if err := d.Ack(false); err != nil {
					return true, err
				}
			}
		}
	}
}

// look reads the durable queues' depths, once a second.
func (c *rabbitColumn) look(q *rabbit.Queues) {
	for _, s := range c.consumers {
		info, ok := q.Peek(s.queue)
		s.exists.Store(ok)
		s.ready.Store(int64(info.Messages))
	}
}
