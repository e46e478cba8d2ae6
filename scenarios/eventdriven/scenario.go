// Package eventdriven is the article's event-driven example running for real
// on RabbitMQ: order-service publishes order_placed events to the fanout
// exchange ecommerce, and inventory, email and analytics each consume them from
// their own queue. The learner stops, crashes and slows consumers, switches ack
// mode and queue kind, sends poison messages, and cuts or slows the network
// path to the broker, and watches every copy of every message being acked,
// redelivered, dead-lettered or lost.
//
// Each sample service has one long-lived AMQP connection (order-service may
// instead open one per publish, as the article does) with a channel per
// purpose; when a connection or channel closes it redials with backoff and
// declares its topology again. All sample services reach the broker through a
// pathcut.Path, so "broker unreachable" cuts a real TCP path while the broker
// keeps running. Queue depths come from the broker itself, read by a watcher
// connected directly, once a second. That plumbing is shared with the work
// queue scenario in scenarios/internal/rabbit; the exchange, the queues, the
// acks and the ledger, what this scenario teaches, are here.
package eventdriven

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// Name is the scenario's id in URLs and commands.
const Name = "event-driven"

// DefaultAMQPURL is the broker used when Config.AMQPURL is empty.
const DefaultAMQPURL = rabbit.DefaultURL

// The nodes of the diagram. A consumer's node id is its name (inventory, email,
// analytics); its queue's node is "queue-" + that name.
const (
	nodeOrderService = "order-service"
	nodeOutside      = "outside-client"
	nodeExchange     = "exchange"
	nodeDLQ          = "dlq"
)

// consumerNames are the article's consumer (inventory) and two more, so that
// fanout has something to fan out to.
var consumerNames = []string{"inventory", "email", "analytics"}

func queueNode(consumer string) string { return "queue-" + consumer }

// Config is what the scenario needs from the server.
type Config struct {
	AMQPURL string        // the broker; DefaultAMQPURL when empty
	Lab     *flow.Lab     // names every exchange and queue
	Emit    *flow.Emitter // takes every hop
}

// Scenario is the running fanout example. Open it, then Run it once: the end
// of Run frees everything Open took.
type Scenario struct {
	lab      *flow.Lab
	emit     *flow.Emitter
	broker   *rabbit.Broker
	exchange string
	dlx      string
	dlq      string

	ledger    *ledger
	publisher *publisher
	consumers []*consumer
	watcher   *watcher
	externals *externalIDs
	started   atomic.Bool

	mu               sync.Mutex // guards the fields below
	deadLetterPoison bool
	series           flow.Point
}

var _ flow.Scenario = (*Scenario)(nil)

// Open prepares the scenario with the article's settings. It dials nothing,
// so it succeeds whether or not a broker is there; only the local end of the
// cuttable path starts listening.
func Open(cfg Config) (*Scenario, error) {
	if cfg.Lab == nil || cfg.Emit == nil {
		return nil, flow.Errorf(flow.Internal, "event-driven: Lab and Emit are required")
	}
	broker, err := rabbit.Open(rabbit.Config{URL: cfg.AMQPURL, Path: "rabbitmq-" + cfg.Lab.ID, Node: nodeExchange, Title: title, Emit: cfg.Emit})
	if err != nil {
		return nil, fmt.Errorf("event-driven: %w", err)
	}
	s := &Scenario{
		lab:       cfg.Lab,
		emit:      cfg.Emit,
		broker:    broker,
		exchange:  cfg.Lab.Name("ecommerce"),
		dlx:       cfg.Lab.Name("ecommerce.dlx"),
		dlq:       cfg.Lab.Name("ecommerce.dlq"),
		ledger:    newLedger(consumerNames),
		externals: newExternalIDs(len(consumerNames)),
	}
	s.publisher = newPublisher(s)
	for i, name := range consumerNames {
		s.consumers = append(s.consumers, newConsumer(s, i, name))
	}
	s.watcher = newWatcher(s)
	return s, nil
}

// title is the scenario's title, in the page and in errors.
const title = "Event-driven (RabbitMQ fanout)"

func (s *Scenario) Name() string  { return Name }
func (s *Scenario) Title() string { return title }
func (s *Scenario) Summary() string {
	return "order-service publishes order_placed events to the fanout exchange " + s.exchange +
		"; inventory, email and analytics each get a copy in their own queue. " +
		"Stop a consumer while orders flow and see whether its copies wait in the queue or are lost."
}

// Run runs order-service, the three consumers and the queue watcher until ctx
// ends. While the broker cannot be reached every service keeps retrying with
// backoff and says so on its node. Run returns once everything is closed:
// nil, or the panic of a service, which stopped the others.
func (s *Scenario) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return flow.Errorf(flow.Internal, "event-driven runs once per Open")
	}
	defer s.broker.Close()
	services := flow.NewServices(ctx)
	services.Go(nodeOrderService, s.publisher.run)
	for _, c := range s.consumers {
		services.Go(c.name, c.run)
	}
	services.Go("queue watcher", s.watcher.Run)
	services.Go("chart", s.chart)
	return services.Wait()
}

// Message returns the ledger's account of one message order-service
// published, while it is in flight and for a while after it settled.
func (s *Scenario) Message(id string) (Message, bool) { return s.ledger.message(id) }

// View lays the topology out left to right: publishers, the exchange, the
// queues, the consumers, and the DLQ they reject into.
func (s *Scenario) View() flow.View {
	// Sized to be read at 1280×720: rows 205 apart hold a queue of four
	// badges with its state above and its note below.
	v := flow.View{Width: 1150, Height: 630, Nodes: []flow.Node{
		{ID: nodeOrderService, Label: "order-service", Kind: "service", X: 178, Y: 116, Note: "publishes order_placed"},
		{ID: nodeOutside, Label: "outside client", Kind: "client", X: 130, Y: 470, Note: "any AMQP client, e.g. pika"},
		{ID: nodeExchange, Label: s.exchange, Kind: "exchange", X: 435, Y: 330, Note: "fanout · " + s.broker.Name},
		{ID: nodeDLQ, Label: s.dlq, Kind: "queue", X: 440, Y: 512, Note: "dead letters via " + s.dlx},
	}}
	v.Edges = []flow.Edge{
		{From: nodeOrderService, To: nodeExchange, Label: "publish"},
		{From: nodeOutside, To: nodeExchange, Label: "publish"},
		{From: nodeExchange, To: nodeOrderService, Label: "confirm / return"},
	}
	// Dead letters travel from a consumer to the DLQ without a drawn edge:
	// three long lines across the queues would hide more than they show.
	for i, name := range consumerNames {
		y := 110 + float64(i)*205
		v.Nodes = append(v.Nodes,
			flow.Node{ID: queueNode(name), Label: name + " queue", Kind: "queue", X: 725, Y: y, Note: s.consumers[i].queueNote()},
			flow.Node{ID: name, Label: name, Kind: "consumer", X: 1010, Y: y, Note: fmt.Sprintf("heartbeat %s", rabbit.Heartbeat)},
		)
		v.Edges = append(v.Edges,
			flow.Edge{From: nodeExchange, To: queueNode(name), Label: "binding"},
			flow.Edge{From: queueNode(name), To: name, Label: "deliver"},
		)
	}
	return v
}

// Stats gathers every node's state and facts, the counters and the ledger.
func (s *Scenario) Stats() flow.Stats {
	l := s.ledger.snapshot()
	st := flow.Stats{Nodes: make(map[string]flow.NodeState)}
	st.Nodes[nodeOrderService] = s.publisher.state()
	st.Nodes[nodeExchange] = s.exchangeState(l)
	outside := flow.NodeState{State: "idle", Facts: []flow.Fact{flow.Count("published", l.external, "%d events from outside")}}
	if l.external > 0 {
		outside.State = "up"
	}
	st.Nodes[nodeOutside] = outside
	for i, c := range s.consumers {
		q, cs := c.states(l.per[i])
		st.Nodes[queueNode(c.name)] = q
		st.Nodes[c.name] = cs
	}
	st.Nodes[nodeDLQ] = s.watcher.dlqState()

	st.Counters = []flow.Counter{
		{Name: "published", Label: "published by order-service", Value: l.published},
		{Name: "confirmed", Label: "confirmed by the broker", Value: l.confirmed},
		{Name: "returned", Label: "returned unroutable", Value: l.returned},
		{Name: "redeliveries", Label: "redeliveries", Value: l.totals.redelivered},
		{Name: "duplicates", Label: "processed twice", Value: l.totals.duplicates},
		{Name: "rejected", Label: "rejected by a consumer", Value: l.totals.rejected},
		{Name: "outside-messages", Label: "from outside clients", Value: l.external},
	}
	for i, name := range consumerNames {
		p := l.per[i]
		st.Counters = append(st.Counters,
			flow.Counter{Name: name + ".acked", Label: name + " acked", Value: p.acked},
			flow.Counter{Name: name + ".in-flight", Label: name + " in flight", Value: p.inFlight},
			flow.Counter{Name: name + ".dead-lettered", Label: name + " dead-lettered", Value: p.dead},
			flow.Counter{Name: name + ".lost", Label: name + " lost", Value: p.dropped},
			flow.Counter{Name: name + ".redeliveries", Label: name + " redeliveries", Value: p.redelivered},
		)
	}
	copies := int64(len(consumerNames))
	st.Ledger = flow.Ledger{
		// The label quotes the published counter, so that the total is
		// never read as a count of events.
		Total: flow.Counter{Name: "copies", Label: fmt.Sprintf("copies of %d published", l.published), Value: l.published * copies},
		Parts: []flow.Counter{
			{Name: "acked", Label: "acked", Value: l.totals.acked},
			{Name: "in-flight", Label: "in flight", Value: l.totals.inFlight},
			{Name: "dead-lettered", Label: "dead-lettered", Value: l.totals.dead},
			{Name: "lost", Label: "dropped", Value: l.totals.dropped},
		},
		Duplicates: &flow.Counter{Name: "duplicates", Label: "processed twice", Value: l.totals.duplicates},
	}
	s.mu.Lock()
	st.Series = s.series
	s.mu.Unlock()
	return st
}

func (s *Scenario) exchangeState(l ledgerSnapshot) flow.NodeState {
	ns := s.watcher.brokerState()
	ns.Facts = append(ns.Facts, s.broker.PathFacts()...)
	ns.Facts = append(ns.Facts, flow.Count("returned", l.returned, "returned %d").When(l.returned > 0))
	return ns
}

// chart takes the chart's point once a second: copies acked per second, the
// share of settled copies that were acked, order-service's publish cost and
// the total queue depth.
func (s *Scenario) chart(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := s.ledger.snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := s.ledger.snapshot()
			ack := cur.totals.acked - prev.totals.acked
			settled := ack + cur.totals.dead - prev.totals.dead + cur.totals.dropped - prev.totals.dropped
			p := flow.Point{Time: now, Throughput: float64(ack), Depth: float64(s.watcher.totalDepth())}
			if settled > 0 {
				p.Success = 100 * float64(ack) / float64(settled)
			}
			p.P50MS, p.P99MS = s.publisher.takeCosts()
			prev = cur
			s.mu.Lock()
			s.series = p
			s.mu.Unlock()
		}
	}
}

// noteLost tells the view, per copy, that a consumer's copies were lost.
func (s *Scenario) noteLost(from, to string, ids []string, why string) {
	for _, id := range ids {
		s.emit.Emit(flow.Event{Kind: flow.KindDrop, From: from, To: to, MsgID: id, Detail: flow.Detail{Outcome: why}})
	}
}

// externalIDs names messages from outside clients that carry no message id.
// Each consumer sees its own copy, so the copies are matched by body: the
// first consumer to see a body names it ext-N and the others reuse that id.
type externalIDs struct {
	mu        sync.Mutex
	consumers int
	n         int
	recent    map[string]*externalSighting
}

type externalSighting struct {
	id   string
	seen []bool
	at   time.Time
}

// externalWindow is how long a body waits for the other consumers' copies.
const externalWindow = 10 * time.Second

func newExternalIDs(consumers int) *externalIDs {
	return &externalIDs{consumers: consumers, recent: make(map[string]*externalSighting)}
}

// name returns the id of consumer c's copy of an outside message: its own
// message id when it has one (given), else ext-N; and whether this is the
// first sight of the message at all.
func (e *externalIDs) name(c int, given string, body []byte) (id string, first bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for k, v := range e.recent {
		if now.Sub(v.at) > externalWindow {
			delete(e.recent, k)
		}
	}
	key := "body:" + string(body)
	if given != "" {
		key = "id:" + given
	}
	if v, ok := e.recent[key]; ok && !v.seen[c] {
		v.seen[c] = true
		if !slices.Contains(v.seen, false) {
			delete(e.recent, key)
		}
		return v.id, false
	}
	id = given
	if id == "" {
		e.n++
		id = fmt.Sprintf("ext-%d", e.n)
	}
	v := &externalSighting{id: id, seen: make([]bool, e.consumers), at: now}
	v.seen[c] = true
	e.recent[key] = v
	return id, true
}

// declareDeadLetters declares the dead-letter exchange and the DLQ bound to
// it, where consumers reject poison messages when the learner chooses
// dead-lettering.
func (s *Scenario) declareDeadLetters(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(s.dlx, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(s.dlq, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(s.dlq, "", s.dlx, false, nil)
}

func (s *Scenario) deadLetteringPoison() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadLetterPoison
}
