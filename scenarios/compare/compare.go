// Package compare runs one business flow three ways side by side: place an
// order, reserve its stock at inventory, send its confirmation email. The
// HTTP column calls inventory and email synchronously; the RabbitMQ column
// publishes order_placed to a fanout exchange that inventory and email read
// from a queue each; the Kafka column produces to a topic keyed by order id
// that inventory and email read as two consumer groups. Inventory's and
// email's work is the same code behind each transport, and one row of
// controls (inventory down, slow, back; the offered load) acts on all three
// at once, so the scorecard counts what each pattern's coupling costs.
package compare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"flowlab/flow"
)

// Name is the scenario's stable id.
const Name = "compare"

// The columns, in the order they are drawn; each is also its order-service's
// node id.
const (
	colHTTP   = "http"
	colRabbit = "rabbitmq"
	colKafka  = "kafka"
)

var columns = [3]string{colHTTP, colRabbit, colKafka}

// Config is what the server hands the scenario.
type Config struct {
	AMQPURL string        // the RabbitMQ the RabbitMQ column uses
	Brokers []string      // the Kafka the Kafka column uses
	Lab     *flow.Lab     // names the exchange, queues, topic and groups
	Emit    *flow.Emitter // where every hop goes
}

// Scenario is the three columns and the controls they share.
type Scenario struct {
	cfg    Config
	inv    inventoryState
	rate   atomic.Int64
	wake   chan struct{} // the load changed
	books  [3]*books
	http   *httpColumn
	rabbit *rabbitColumn
	kafka  *kafkaColumn

	mu        sync.Mutex
	queueKind string
	ackMode   string
	catching  [3]bool    // catching up since inventory came back
	backAt    time.Time  // when inventory last came back
	catchUpMS [3]int64   // how long the last catch-up took
	point     flow.Point // the newest chart point
}

var _ flow.Scenario = (*Scenario)(nil)

// Defaults: the article's HTTP call has no timeout and no retry
// (requests.post without timeout=), and the queues are durable and acked
// after the work, as the flow this tab compares is built.
const (
	defaultRate = 5
	maxRate     = 100
)

// Open checks cfg and returns a scenario ready to Run: its HTTP services'
// ports are bound; no broker is dialed.
func Open(cfg Config) (*Scenario, error) {
	if len(cfg.Brokers) == 0 {
		return nil, flow.Errorf(flow.Invalid, "the comparison needs at least one Kafka broker address")
	}
	if cfg.Lab == nil || cfg.Emit == nil {
		return nil, flow.Errorf(flow.Internal, "the comparison needs a lab and an emitter")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, flow.Errorf(flow.Internal, "run id: %v", err)
	}
	run := hex.EncodeToString(b[:])
	s := &Scenario{cfg: cfg, wake: make(chan struct{}, 1), queueKind: queueDurable, ackMode: ackAfterWork}
	for i := range s.books {
		s.books[i] = newBooks()
	}
	s.inv.up.Store(true)
	s.rate.Store(defaultRate)
	var err error
	if s.http, err = openHTTP(s.books[0], &s.inv, cfg.Emit); err != nil {
		return nil, flow.Errorf(flow.Unavailable, "HTTP services: %v", err)
	}
	if s.rabbit, err = openRabbit(cfg.AMQPURL, cfg.Lab, s.books[1], &s.inv, cfg.Emit, run); err != nil {
		s.http.release()
		return nil, err
	}
	if s.kafka, err = openKafka(cfg.Brokers, cfg.Lab, s.books[2], &s.inv, cfg.Emit, run); err != nil {
		s.http.release()
		s.rabbit.broker.Close()
		return nil, err
	}
	return s, nil
}

func (s *Scenario) Name() string  { return Name }
func (s *Scenario) Title() string { return "Compare (HTTP, RabbitMQ, Kafka side by side)" }
func (s *Scenario) Summary() string {
	return "One order flow — place the order, reserve its stock at inventory, send the confirmation " +
		"email — built three ways at the same offered load: HTTP calls, a RabbitMQ fanout to durable " +
		"queues, a Kafka topic read by two consumer groups. Take inventory down and watch the columns " +
		"part: HTTP turns callers away, the brokers accept and hold the orders until inventory is back."
}

// Run runs every column and the load until ctx ends.
func (s *Scenario) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.http.serve(ctx) })
	wg.Go(func() { s.rabbit.serve(ctx) })
	wg.Go(func() { s.kafka.serve(ctx) })
	wg.Go(func() { s.load(ctx) })
	wg.Go(func() { s.tick(ctx) })
	wg.Wait()
	return nil
}

// load places an order in every column at once, rate times a second.
func (s *Scenario) load(ctx context.Context) {
	for ctx.Err() == nil {
		r := s.rate.Load()
		if r == 0 {
			select {
			case <-ctx.Done():
			case <-s.wake:
			}
			continue
		}
		t := time.NewTimer(time.Second / time.Duration(r))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-s.wake:
			t.Stop()
		case <-t.C:
			s.placeAll(ctx)
		}
	}
}

// placeAll places one order in each column at the same moment.
func (s *Scenario) placeAll(ctx context.Context) {
	s.http.place(ctx)
	s.rabbit.place()
	s.kafka.place(ctx)
}

// tick closes each second for the swimlanes and times each column's
// catch-up: from inventory's return until its backlog is gone.
func (s *Scenario) tick(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var totals [3]tally
			for i, b := range s.books {
				b.tick(now)
				totals[i] = b.tally()
			}
			s.mu.Lock()
			for i := range columns {
				if s.catching[i] && s.backlog(i, totals[i]) == 0 {
					s.catching[i] = false
					s.catchUpMS[i] = now.Sub(s.backAt).Milliseconds()
				}
			}
			if p := s.point; now.Sub(p.Time) >= time.Second {
				s.point = s.chartPoint(now, totals)
			}
			s.mu.Unlock()
		}
	}
}

// backlog is what waits for inventory or email in column i: calls blocked
// at the caller for HTTP, accepted orders not yet done for the brokers.
func (s *Scenario) backlog(i int, t tally) int64 {
	if columns[i] == colHTTP {
		return t.calling()
	}
	return t.waiting()
}

func (s *Scenario) chartPoint(now time.Time, totals [3]tally) flow.Point {
	p := flow.Point{Time: now}
	var accepted, failed int64
	for i, t := range totals {
		p.Throughput += float64(t.fulfilledPerS)
		accepted += t.acceptedPerS
		failed += t.failedPerS
		p.Depth += float64(s.backlog(i, t))
		p.P99MS = max(p.P99MS, t.p99MS)
	}
	if accepted+failed > 0 {
		p.Success = 100 * float64(accepted) / float64(accepted+failed)
	}
	return p
}

// setInventory takes inventory down in every column at once, or brings it
// back and starts timing each column's catch-up.
func (s *Scenario) setInventory(up bool) error {
	if s.inv.up.Load() == up {
		if up {
			return flow.Errorf(flow.Invalid, "inventory is already up")
		}
		return flow.Errorf(flow.Invalid, "inventory is already down")
	}
	if err := s.http.setInventory(up); err != nil {
		return flow.Errorf(flow.Unavailable, "could not bring inventory-service's port back: %v", err)
	}
	s.inv.up.Store(up)
	s.rabbit.setInventory()
	s.kafka.setInventory()
	s.mu.Lock()
	if up {
		s.backAt = time.Now()
		s.catching = [3]bool{true, true, true}
	}
	s.mu.Unlock()
	s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, From: "inventory", To: "inventory", Detail: flow.Detail{Knob: "inventory.up", Value: up}})
	return nil
}
