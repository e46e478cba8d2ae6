// Package asyncmsg is the article's asynchronous-messaging example run for
// real on Kafka: order-service produces order events keyed by order id to the
// topic orders, and the consumer group the article leaves out (inventory)
// processes them. Learners add, remove and crash members, slow them down,
// change how they commit, replay the log and cut the network path, and every
// hop becomes a flow event.
//
// The scenario speaks Kafka and nothing else: it is handed broker addresses
// and never knows whether they belong to the embedded broker or to a real
// cluster.
package asyncmsg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

// Name is the scenario's stable id.
const Name = "async-messaging"

// Config is what the server hands the scenario.
type Config struct {
	Brokers []string      // Kafka bootstrap addresses, host:port
	Lab     *flow.Lab     // names the topic and the group
	Emit    *flow.Emitter // where every hop goes
}

// Scenario runs order-service, the orders topic and the inventory group in
// one lab.
type Scenario struct {
	cfg   Config
	topic string
	group string
	// runPrefix makes this run's message ids, runPrefix followed by n, as
	// in "3f9a1c-42", apart from an earlier run's.
	runPrefix string
	// began tells this run's records from those an earlier run left in the
	// topic, by their time (to the millisecond, as Kafka keeps it).
	began time.Time

	// reached is, per partition, the offset after the newest record any
	// member processed: the records from there to the log's end are those
	// in the log and not yet processed, as the ledger counts them.
	reached    [maxPartitions]atomic.Int64
	ledger     *ledger
	window     *window
	rebalances *rebalances
	outside    *outsideIDs

	// ops serialises commands and shutdown. It is held only for quick work:
	// what waits on the broker runs in changes, without it.
	ops     sync.Mutex
	changes *changes

	mu       sync.Mutex
	set      settings
	rt       *runtime            // nil unless Run is running
	members  [maxMembers]*member // nil: never started or removed
	ghosts   []ghost             // crashed members forgotten, still in the group
	producer *orderService
	parts    []partitionRead // last broker read, index = partition
	// endsAgo is each partition's log end as read behindAfter ago or
	// earlier (nil before): records before it have waited that long.
	endsAgo []int64
	// draining is true when the records not yet processed were fewer at
	// the newest read than at the one before: a backlog going down.
	draining bool
	readErr  string     // why the last broker read failed, if it did
	point    flow.Point // the newest chart point
	sendRate float64    // records order-service sent in the last second
	burst    int        // order events still to send at once, beside the rate
	burstRun *burstRun  // the burst on its way, nil when none
	last     lastBurst  // the newest burst done
	// wake starts order-service's next round at once rather than at its
	// next tick: a burst was asked for, or is not finished.
	wake chan struct{}
}

var _ flow.Scenario = (*Scenario)(nil)

// runtime is what exists only while Run runs.
type runtime struct {
	ctx   context.Context
	wg    sync.WaitGroup
	admin *kadm.Client
	paths *brokerPaths
	// changesDone is closed when runChanges has returned: shutdown waits
	// for it before it stops the members a change may be starting.
	changesDone chan struct{}
}

// Open checks cfg and returns a scenario ready to Run. It dials nothing.
func Open(cfg Config) (*Scenario, error) {
	if len(cfg.Brokers) == 0 {
		return nil, flow.Errorf(flow.Invalid, "asynchronous messaging needs at least one Kafka broker address")
	}
	if cfg.Lab == nil || cfg.Emit == nil {
		return nil, flow.Errorf(flow.Internal, "asynchronous messaging needs a lab and an emitter")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, flow.Errorf(flow.Internal, "run id: %v", err)
	}
	s := &Scenario{
		cfg:       cfg,
		topic:     cfg.Lab.Name("orders"),
		group:     cfg.Lab.Name("inventory"),
		runPrefix: hex.EncodeToString(b[:]) + "-",
		began:     time.UnixMilli(time.Now().UnixMilli()),
		ledger:    newLedger(),
		window:    newWindow(),
		outside:   newOutsideIDs(),
		set:       defaultSettings(),
		wake:      make(chan struct{}, 1),
		changes:   newChanges(),
	}
	s.rebalances = newRebalances(s)
	return s, nil
}

func (s *Scenario) Name() string  { return Name }
func (s *Scenario) Title() string { return "Asynchronous messaging (Kafka)" }
func (s *Scenario) Summary() string {
	return "order-service writes order events to the Kafka topic orders, keyed by order id so " +
		"each order's events stay in one partition and in order; the consumer group inventory " +
		"shares the partitions among its members. The article's \"Consumer\" is a copy of its " +
		"producer: its preset runs no member, and records wait in the log until you add one. " +
		"Crash a member before it commits and watch the " +
		"rebalance and the duplicates; cut the path to the broker and watch the producer buffer."
}

// Run creates the topic if needed, starts order-service and the first
// members, and runs until ctx ends. It then closes every client and returns
// nil once every goroutine it started has ended.
func (s *Scenario) Run(ctx context.Context) error {
	admin, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.DisableClientMetrics())
	if err != nil {
		return flow.Errorf(flow.Invalid, "Kafka brokers %v: %v", s.cfg.Brokers, err)
	}
	rt := &runtime{ctx: ctx, admin: kadm.NewClient(admin), paths: newBrokerPaths(), changesDone: make(chan struct{})}
	defer admin.Close()
	defer rt.paths.Close()
	s.mu.Lock()
	latency := s.set.latencyMS
	s.mu.Unlock()
	rt.paths.SetLatency(latency) // no path exists yet: this cannot fail

	if !s.waitForTopic(ctx, rt.admin) {
		return nil // ctx ended before the broker answered
	}

	s.ops.Lock()
	s.mu.Lock()
	s.rt = rt
	set := s.set
	s.mu.Unlock()
	err = s.startProducer(rt, set)
	for i := range set.members {
		if err == nil {
			err = s.startMember(rt, i)
		}
	}
	s.ops.Unlock()
	if err != nil {
		close(rt.changesDone) // never started
		s.shutdown(rt)
		return err
	}

	rt.wg.Add(4)
	go func() { defer rt.wg.Done(); s.runChanges(ctx, rt) }()
	go func() { defer rt.wg.Done(); s.runOrderService(ctx) }()
	go func() { defer rt.wg.Done(); s.watch(ctx) }()
	go func() { defer rt.wg.Done(); s.readBroker(ctx, rt.admin) }()

	<-ctx.Done()
	s.shutdown(rt)
	return nil
}

// shutdown stops the producer at once and, when the change in progress has
// ended, every member, and waits for all goroutines. Each member's goodbye,
// the producer's last flush and every step of a change are bounded, so this
// takes a few seconds at most whatever was going on.
func (s *Scenario) shutdown(rt *runtime) {
	producer := make(chan struct{})
	go func() { defer close(producer); s.stopProducer(context.Background()) }()
	<-rt.changesDone
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	s.rt = nil
	s.burst, s.burstRun = 0, nil // never handed to the producer: nothing to account for
	s.mu.Unlock()
	var ms []*member
	for i := range maxMembers {
		ms = append(ms, s.detachMember(i))
	}
	waitGone(ms...)
	<-producer
	s.stopProducer(context.Background()) // one a change started meanwhile, if any
	rt.wg.Wait()
}

// waitForTopic creates the topic with the partitions knob's count, or takes
// the count of the one already there, retrying every second while the broker
// does not answer. It reports false when ctx ended first.
func (s *Scenario) waitForTopic(ctx context.Context, admin *kadm.Client) bool {
	for {
		err := s.ensureTopic(ctx, admin)
		if err == nil {
			return true
		}
		s.mu.Lock()
		s.readErr = "waiting for the broker: " + err.Error()
		s.mu.Unlock()
		s.state("orders", "unreachable", err.Error())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (s *Scenario) ensureTopic(ctx context.Context, admin *kadm.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics, err := admin.ListTopics(ctx, s.topic)
	if err != nil {
		return err
	}
	if t, ok := topics[s.topic]; ok && t.Err == nil {
		s.mu.Lock()
		s.set.partitions = len(t.Partitions)
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	n := s.set.partitions
	s.mu.Unlock()
	_, err = admin.CreateTopic(ctx, int32(n), -1, nil, s.topic)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return s.ensureTopic(ctx, admin)
	}
	return err
}

// state emits a state change of one node.
func (s *Scenario) state(node, state, note string) {
	s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, From: node,
		Detail: flow.Detail{Node: node, State: state, Payload: note}})
}

// running returns the runtime, or an Unavailable error while Run is not
// running: buttons need live clients.
func (s *Scenario) running() (*runtime, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt == nil {
		return nil, flow.Errorf(flow.Unavailable, "asynchronous messaging is not running")
	}
	return s.rt, nil
}
