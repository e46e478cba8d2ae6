// Package workqueue is the article's "send emails after a purchase" running
// for real on RabbitMQ: order-service queues one email job per order on a
// durable queue, and competing email workers take them. Sending fails at a
// rate the learner sets; a failed job waits out a growing delay in a retry
// queue (one queue per attempt, with a message TTL and the emails queue as
// its dead-letter target) and comes back; after the last allowed attempt it
// is dead-lettered to a DLQ. Every attempt is a hop on the job's trace.
//
// As in the event-driven scenario, each service has one long-lived connection
// with a channel per purpose, reconnects with backoff, and reaches the broker
// through a cuttable pathcut.Path; queue depths come from the broker itself.
// That plumbing is shared in scenarios/internal/rabbit.
package workqueue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// Name is the scenario's id in URLs and commands.
const Name = "work-queue"

// DefaultAMQPURL is the broker used when Config.AMQPURL is empty.
const DefaultAMQPURL = rabbit.DefaultURL

// The nodes of the diagram; the workers are worker-1, worker-2, ….
const (
	nodeOrderService = "order-service"
	nodeEmails       = "emails"
	nodeRetry        = "retry"
	nodeDLQ          = "dlq"
)

// maxWorkers bounds how many competing workers the learner may have;
// defaultWorkers are there at the start.
const (
	maxWorkers     = 5
	defaultWorkers = 3
)

// maxAttempts bounds the max-attempts knob, and so the number of retry queues.
const maxAttempts = 10

// retryDelay is how long a job waits after its attempt-th failure: 250 ms,
// doubling per attempt. Each attempt has its own queue because RabbitMQ
// expires messages only at the head of a queue: one queue with per-message
// delays would hold a short delay behind a long one.
func retryDelay(attempt int) time.Duration { return 250 * time.Millisecond << (attempt - 1) }

// Config is what the scenario needs from the server.
type Config struct {
	AMQPURL string        // the broker; DefaultAMQPURL when empty
	Lab     *flow.Lab     // names every exchange and queue
	Emit    *flow.Emitter // takes every hop
}

// Scenario is the running work queue. Open it, then Run it once: the end of
// Run frees everything Open took.
type Scenario struct {
	lab    *flow.Lab
	emit   *flow.Emitter
	broker *rabbit.Broker
	queue  string // the emails queue
	dlx    string
	dlq    string

	ledger   *ledger
	producer *producer
	workers  []*worker // all maxWorkers of them; the first hired are the learner's
	watcher  *watcher
	started  atomic.Bool
	external atomic.Int64 // outside jobs seen

	mu       sync.Mutex // guards the fields below
	work     workSettings
	hired    int // workers the learner has: workers[:hired]
	series   flow.Point
	attempts []time.Duration // job times, first publish to settling, since the chart looked
}

// workSettings are shared by every worker: they describe the email service
// the workers call, and the retry policy.
type workSettings struct {
	failure     int // percent of attempts that fail
	processing  time.Duration
	maxAttempts int
	prefetch    int
}

var defaultWork = workSettings{failure: 20, processing: 100 * time.Millisecond, maxAttempts: 4, prefetch: 5}

var _ flow.Scenario = (*Scenario)(nil)

// Open prepares the scenario. It dials nothing, so it succeeds whether or not
// a broker is there; only the local end of the cuttable path listens.
func Open(cfg Config) (*Scenario, error) {
	if cfg.Lab == nil || cfg.Emit == nil {
		return nil, flow.Errorf(flow.Internal, "work-queue: Lab and Emit are required")
	}
	broker, err := rabbit.Open(rabbit.Config{URL: cfg.AMQPURL, Path: "rabbitmq-work-" + cfg.Lab.ID, Node: nodeEmails, Title: title, Emit: cfg.Emit})
	if err != nil {
		return nil, fmt.Errorf("work-queue: %w", err)
	}
	s := &Scenario{
		lab:    cfg.Lab,
		emit:   cfg.Emit,
		broker: broker,
		queue:  cfg.Lab.Name("emails"),
		dlx:    cfg.Lab.Name("emails.dlx"),
		dlq:    cfg.Lab.Name("emails.dlq"),
		ledger: newLedger(),
		work:   defaultWork,
		hired:  defaultWorkers,
	}
	s.producer = newProducer(s)
	for i := range maxWorkers {
		w := newWorker(s, fmt.Sprintf("worker-%d", i+1))
		if i >= defaultWorkers {
			w.want, w.left = wantRemoved, true
		}
		s.workers = append(s.workers, w)
	}
	s.watcher = newWatcher(s)
	return s, nil
}

// title is the scenario's title, in the page and in errors.
const title = "Work queue with delayed retries (RabbitMQ)"

func (s *Scenario) Name() string  { return Name }
func (s *Scenario) Title() string { return title }
func (s *Scenario) Summary() string {
	return "order-service queues an email job per order on " + s.queue + "; competing workers share them, each job to one worker. " +
		"Make sending fail and watch each job retry after a growing delay, then land in the DLQ after its last attempt."
}

// retryQueue names the queue a job waits in after its attempt-th failure.
func (s *Scenario) retryQueue(attempt int) string {
	return s.lab.Name(fmt.Sprintf("emails.retry.%d", attempt))
}

// Run runs order-service, the workers and the queue watcher until ctx ends,
// and returns once everything is closed: nil, or the panic of a service,
// which stopped the others.
func (s *Scenario) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return flow.Errorf(flow.Internal, "work-queue runs once per Open")
	}
	defer s.broker.Close()
	services := flow.NewServices(ctx)
	services.Go("order-service", s.producer.run)
	for _, w := range s.workers {
		services.Go(w.name, w.run)
	}
	services.Go("queue watcher", s.watcher.Run)
	services.Go("chart", s.chart)
	return services.Wait()
}

// staff are the workers the learner has now.
func (s *Scenario) staff() []*worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workers[:s.hired]
}

// shown are the workers the diagram draws: the learner's, and any removed
// one still handing its jobs back.
func (s *Scenario) shown() []*worker {
	s.mu.Lock()
	hired := s.hired
	s.mu.Unlock()
	var ws []*worker
	for i, w := range s.workers {
		if i < hired || !w.gone() {
			ws = append(ws, w)
		}
	}
	return ws
}

// hire makes the learner's workers the first n, starting the ones added and
// stopping, cleanly, the ones removed. The caller holds s.mu.
func (s *Scenario) hire(n int) {
	for i := n; i < s.hired; i++ {
		s.workers[i].setWant(wantRemoved)
	}
	for i := s.hired; i < n; i++ {
		s.workers[i].setWant(wantRunning)
	}
	s.hired = n
}

// Job returns the ledger's account of one job, while it is in flight and for
// a while after it settled.
func (s *Scenario) Job(id string) (Job, bool) { return s.ledger.job(id) }

// declareTopology declares the emails queue with its dead-letter exchange and
// DLQ, and one retry queue per attempt that hands its messages back to the
// emails queue once their delay is over. Every service declares it after
// every (re)connect.
func (s *Scenario) declareTopology(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(s.dlx, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(s.dlq, true, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.QueueBind(s.dlq, "", s.dlx, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(s.queue, true, false, false, false, amqp.Table{"x-dead-letter-exchange": s.dlx}); err != nil {
		return err
	}
	for a := 1; a < maxAttempts; a++ {
		args := amqp.Table{
			"x-message-ttl":             retryDelay(a).Milliseconds(),
			"x-dead-letter-exchange":    "", // the default exchange: straight back to the emails queue
			"x-dead-letter-routing-key": s.queue,
		}
		if _, err := ch.QueueDeclare(s.retryQueue(a), true, false, false, false, args); err != nil {
			return err
		}
	}
	return nil
}

// View lays the topology out left to right: order-service, the emails queue
// with the retry queues below it, the workers, the DLQ.
func (s *Scenario) View() flow.View {
	// Sized to be read at 1280×720: the workers' column, rows 190 apart,
	// sits between the queue they share and the DLQ. The retry queues stand
	// off to the left, so that their line to the queue misses their state.
	staff := s.shown()
	v := flow.View{Width: 1130, Height: 200 + 190*float64(max(len(staff), 3)-1), Nodes: []flow.Node{
		{ID: nodeOrderService, Label: "order-service", Kind: "service", X: 140, Y: 300, Note: "one email job per order"},
		{ID: nodeEmails, Label: s.queue, Kind: "queue", X: 410, Y: 300, Note: "durable, shared"},
		{ID: nodeRetry, Label: "retry queues", Kind: "queue", X: 200, Y: 500,
			Note: fmt.Sprintf("one per attempt: wait %s, doubling", retryDelay(1))},
		{ID: nodeDLQ, Label: s.dlq, Kind: "queue", X: 950, Y: 300, Note: "after the last attempt, via " + s.dlx},
	}}
	v.Edges = []flow.Edge{
		{From: nodeOrderService, To: nodeEmails, Label: "publish"},
		{From: nodeEmails, To: nodeOrderService, Label: "confirm"},
		{From: nodeRetry, To: nodeEmails, Label: "delay over"},
	}
	// Retries travel from a worker to the retry queues without a drawn edge:
	// more lines across the middle would hide more than they show.
	for i, w := range staff {
		v.Nodes = append(v.Nodes, flow.Node{ID: w.name, Label: w.name, Kind: "consumer", X: 690, Y: 110 + float64(i)*190, Note: "email worker"})
		v.Edges = append(v.Edges,
			flow.Edge{From: nodeEmails, To: w.name, Label: "deliver"},
			flow.Edge{From: w.name, To: nodeEmails, Label: "ack"},
			flow.Edge{From: w.name, To: nodeDLQ, Label: "dead-letter"},
		)
	}
	return v
}

// Stats gathers the node states, counters and ledger.
func (s *Scenario) Stats() flow.Stats {
	l := s.ledger.snapshot()
	st := flow.Stats{Nodes: map[string]flow.NodeState{
		nodeOrderService: s.producer.state(),
		nodeEmails:       s.watcher.emailsState(),
		nodeRetry:        s.watcher.retryState(),
		nodeDLQ:          s.watcher.dlqState(),
	}}
	for _, w := range s.shown() {
		st.Nodes[w.name] = w.state()
	}
	st.Counters = []flow.Counter{
		{Name: "published", Label: "jobs published", Value: l.published},
		{Name: "acked", Label: "emails sent", Value: l.count[acked]},
		{Name: "retries", Label: "retries", Value: l.retries},
		{Name: "waiting", Label: "waiting to retry", Value: l.count[waiting]},
		{Name: "dead-lettered", Label: "dead-lettered", Value: l.count[deadLettered]},
		{Name: "redeliveries", Label: "redeliveries", Value: l.redelivered},
		{Name: "duplicates", Label: "emails sent twice", Value: l.duplicates},
	}
	st.Ledger = flow.Ledger{
		Total: flow.Counter{Name: "published", Label: "published", Value: l.published},
		Parts: []flow.Counter{
			{Name: "acked", Label: "sent", Value: l.count[acked]},
			{Name: "in-flight", Label: "in flight (queued, working, waiting to retry)", Value: l.inFlight()},
			{Name: "dead-lettered", Label: "dead-lettered", Value: l.count[deadLettered]},
			{Name: "lost", Label: "dropped", Value: l.count[dropped]},
		},
		Duplicates: &flow.Counter{Name: "duplicates", Label: "emails sent twice", Value: l.duplicates},
	}
	s.mu.Lock()
	st.Series = s.series
	s.mu.Unlock()
	return st
}

// chart takes the chart's point once a second: jobs sent per second, the
// share of settled jobs that were sent, how long jobs took from first publish
// to settling (retries included), and the emails queue's depth.
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
			sent := cur.count[acked] - prev.count[acked]
			settled := sent + cur.count[deadLettered] - prev.count[deadLettered] + cur.count[dropped] - prev.count[dropped]
			p := flow.Point{Time: now, Throughput: float64(sent), Depth: float64(s.watcher.emailsDepth())}
			if settled > 0 {
				p.Success = 100 * float64(sent) / float64(settled)
			}
			s.mu.Lock()
			p.P50MS, p.P99MS = percentiles(s.attempts)
			s.attempts = s.attempts[:0]
			s.series = p
			s.mu.Unlock()
			prev = cur
		}
	}
}

// settledAfter records how long a job took from its first publish.
func (s *Scenario) settledAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, d)
}

func (s *Scenario) settings() workSettings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.work
}

// externalID names an outside job that came without a message id, at first
// sight; its retries carry that id on.
func (s *Scenario) externalID() string {
	return fmt.Sprintf("ext-%d", s.external.Add(1))
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
