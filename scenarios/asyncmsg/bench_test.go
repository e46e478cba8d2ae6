package asyncmsg_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
	"flowlab/scenarios/internal/pathcut"
)

// flushLatency is added on the path to the broker in BenchmarkFlush: 0 is
// loopback, where a round trip costs tens of microseconds; a real cluster
// is a millisecond or more away, and flushing after every record pays that
// once per record.
var flushLatency = flag.Int("flush.latency", 0, "ms of latency BenchmarkFlush adds on the path to the broker")

const (
	burst = 1000 // records per press of send-1000, and per burst of the bare loop
	// window bounds the records sent and not yet processed, in bursts, so
	// that the producer's buffer (10,000 records) never refuses one.
	window    = 8 * burst
	pollEvery = 2 * time.Millisecond // how often the benchmark looks at the group's progress
	benchWait = 15 * time.Second     // how long one round may take before it fails
)

// BenchmarkTapping measures produce→consume throughput of order events on an
// embedded kfake cluster, in the same run and against the same cluster:
//
//   - loop=flowlab: through the scenario with its emitter set up as the
//     server sets it up: every record in the ledger, and the hops of the
//     messages the view draws (about flow.DrawRate a second, whole
//     messages) tapped into flow events;
//   - loop=flowlab-every-hop: the same with every hop of every message
//     tapped into an event, as when the rate is low enough to draw them all;
//   - loop=bare: a bare franz-go loop with the same client settings and the
//     same cuttable path to the broker, with no ledger, no events and no
//     view.
//
// All use the reliable preset's settings: acks all, linger 5 ms, three
// members of a group on three partitions committing after each polled
// batch, no processing time. One op is one record produced and processed by
// the group; records are sent in bursts of 1000 (the scenario's send-1000
// button) with at most 8000 unacknowledged or unprocessed at a time.
// flowlab / bare is the cost of tapping. The three start once and then take
// turns, round after round, so that a machine that slows down or speeds up
// meanwhile weighs on all of them alike. About 30 s:
//
//	go test -run '^$' -bench Tapping -benchtime 300000x ./scenarios/asyncmsg/
//
// -tapping.rounds sets the rounds (8). The figures are records/s (processed
// per second of wall time), records/cpu-s (per second of process CPU,
// getrusage user + sys) and cores.
func BenchmarkTapping(b *testing.B) {
	ignore := goleak.IgnoreCurrent()
	c := mustCluster(b)
	type loop struct {
		name string
		p    pipeline
	}
	var loops []loop
	defer func() {
		for _, l := range loops {
			if err := l.p.stop(); err != nil {
				b.Errorf("%s: %v", l.name, err)
			}
		}
		c.Close()
		if err := goleak.Find(ignore); err != nil {
			b.Errorf("goroutines left after the benchmark: %v", err)
		}
	}()
	loops = append(loops, loop{"loop=flowlab", startTapped(b, c, true)})
	loops = append(loops, loop{"loop=flowlab-every-hop", startTapped(b, c, false)})
	loops = append(loops, loop{"loop=bare", startBare(b, c)})
	for range *tappingRounds {
		for _, l := range loops {
			b.Run(l.name, func(b *testing.B) { benchPipeline(b, l.p) })
		}
	}
}

var tappingRounds = flag.Int("tapping.rounds", 8, "rounds of BenchmarkTapping, each variant once a round")

// pipeline is one way of getting order events from a producer through the
// consumer group.
type pipeline interface {
	send(b *testing.B)                  // hands a burst of 1000 records to the producer
	progress() (acked, processed int64) // records acknowledged by the broker and processed by the group so far
	status() string                     // what to say when a round takes too long
	check(b *testing.B, records int)
	stop() error // closes every client and waits for their goroutines
}

// benchPipeline sends b.N records, rounded up to whole bursts, keeping at
// most window of them unacknowledged or unprocessed, and stops the clock when
// the group has processed the last. Both bounds matter: a member may process
// a record before the producer has handled the broker's answer for it, and
// until then the record still takes room in the producer's buffer.
func benchPipeline(b *testing.B, p pipeline) {
	bursts := (b.N + burst - 1) / burst
	acked0, done0 := p.progress()
	want := done0 + int64(bursts*burst)
	runtime.GC() // the setup's garbage is not the benchmark's
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	sent := 0
	for {
		acked, done := p.progress()
		if done >= want {
			break
		}
		for sent < bursts && int64(sent*burst)-min(acked-acked0, done-done0) < window {
			p.send(b)
			sent++
		}
		if time.Since(began) > benchWait {
			b.Fatalf("after %v: %d of %d records processed; %s", benchWait, done-done0, want-done0, p.status())
		}
		time.Sleep(pollEvery)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(began)
	b.StopTimer()
	records := bursts * burst
	p.check(b, records)
	b.ReportMetric(float64(records)/wall.Seconds(), "records/s")
	b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
}

// tapped is the scenario itself, its events taken as a hub would take them.
type tapped struct {
	s      *asyncmsg.Scenario
	events *eventCount
	cancel context.CancelFunc
	done   chan error
	before int64 // events before the current round
}

// eventCount takes events as a hub would: at once, without keeping them
// (the hub's own cost is BenchmarkFanout's in server/hub).
type eventCount struct{ n atomic.Int64 }

func (c *eventCount) Emit(flow.Event) { c.n.Add(1) }

// startTapped starts the scenario; sampled sets its emitter up as the
// server does.
func startTapped(b *testing.B, c *kfake.Cluster, sampled bool) pipeline {
	lab := mustLab(b)
	ev := &eventCount{}
	em := flow.NewEmitter(lab, asyncmsg.Name, ev)
	if sampled {
		em.Sample(flow.DrawRate)
	}
	s, err := asyncmsg.Open(asyncmsg.Config{Brokers: c.ListenAddrs(), Lab: lab, Emit: em})
	if err != nil {
		b.Fatal(err)
	}
	if err := flow.ApplyPreset(s, "reliable"); err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"m1-processing", "m2-processing", "m3-processing", "rate"} {
		mustSet(b, s, k, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &tapped{s: s, events: ev, cancel: cancel, done: make(chan error, 1)}
	go func() { t.done <- s.Run(ctx) }()
	started := false
	defer func() {
		if !started { // b failed: the benchmark will not stop it
			t.stop()
		}
	}()
	waitUntil(b, 20*time.Second, "three members consuming in a stable group", func() bool {
		n := s.Stats().Nodes
		return n["inventory"].State == "stable" && n["m1"].State == "consuming" &&
			n["m2"].State == "consuming" && n["m3"].State == "consuming"
	})
	started = true
	return t
}

func (t *tapped) send(b *testing.B) {
	if t.before == 0 {
		t.before = t.events.n.Load()
	}
	mustSet(b, t.s, "send-1000", nil)
}

func (t *tapped) progress() (int64, int64) { return t.s.Progress() }

func (t *tapped) status() string {
	st := t.s.Stats()
	return fmt.Sprintf("ledger %+v, counters %+v, nodes %+v", st.Ledger, st.Counters, st.Nodes)
}

// check fails the round unless every record was acknowledged and processed
// exactly once, and reports the events each cost.
func (t *tapped) check(b *testing.B, records int) {
	// The last answers may still be on their way to the promises.
	waitUntil(b, 10*time.Second, "every record acknowledged", func() bool {
		acked, done := t.s.Progress()
		return acked == done
	})
	st := t.s.Stats()
	if !st.Ledger.Balanced() || ledgerPart(st, "refused")+ledgerPart(st, "failed")+ledgerPart(st, "waiting")+ledgerPart(st, "in-log") != 0 {
		b.Fatalf("not every record acknowledged and processed: %+v", st.Ledger)
	}
	for _, c := range st.Counters {
		if c.Name == "redeliveries" && c.Value != 0 {
			b.Fatalf("%d records processed twice: the group moved during the benchmark", c.Value)
		}
	}
	n := t.events.n.Load()
	b.ReportMetric(float64(n-t.before)/float64(records), "events/record")
	t.before = 0
}

func (t *tapped) stop() error {
	t.cancel()
	select {
	case err := <-t.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("Run did not return 20 s after its context ended")
	}
}

// bare is the same franz-go work without flowlab: the scenario's producer
// and member client options, the same keys and values (without the header
// that joins an event's hops), one cuttable path per broker as the
// scenario's clients have, and members that count each record, commit after
// each polled batch and poll again.
type bare struct {
	paths    *paths
	producer *kgo.Client
	members  []*kgo.Client
	cancel   context.CancelFunc
	running  sync.WaitGroup

	n                  uint64 // records handed to the producer
	done, acked, lost  atomic.Int64
	owned              [3]atomic.Int32 // partitions each member holds
	commitErr, pollErr atomic.Value
}

func startBare(b *testing.B, c *kfake.Cluster) pipeline {
	lab := mustLab(b)
	topic, group := lab.Name("orders"), lab.Name("inventory")
	mustCreateTopic(b, c, topic)
	ctx, cancel := context.WithCancel(context.Background())
	p := &bare{paths: newPaths(0), cancel: cancel}
	started := false
	defer func() {
		if !started { // b failed: the benchmark will not stop it
			p.stop()
		}
	}()
	var err error
	p.producer, err = kgo.NewClient(producerOpts(c, p.paths, topic, 5*time.Millisecond)...)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(c.ListenAddrs()...),
			kgo.Dialer(p.paths.dial),
			kgo.ClientID("inventory-m"+strconv.Itoa(i+1)),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(10*time.Second),
			kgo.HeartbeatInterval(3*time.Second),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				p.owned[i].Add(int32(len(ps[topic])))
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, ps map[string][]int32) {
				p.commit(cl)
				p.owned[i].Add(-int32(len(ps[topic])))
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				p.owned[i].Add(-int32(len(ps[topic])))
			}),
			kgo.MetadataMaxAge(time.Second),
			kgo.MetadataMinAge(500*time.Millisecond),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.DisableAutoCommit(),
		)
		if err != nil {
			b.Fatal(err)
		}
		p.members = append(p.members, cl)
		p.running.Go(func() { p.consume(ctx, cl) })
	}
	waitUntil(b, 20*time.Second, "three members holding a partition each", func() bool {
		return p.owned[0].Load() == 1 && p.owned[1].Load() == 1 && p.owned[2].Load() == 1
	})
	started = true
	return p
}

// consume is a member's loop: poll, count, commit, poll again.
func (p *bare) consume(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollRecords(ctx, 500)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) { p.pollErr.Store(err) })
		if n := fs.NumRecords(); n > 0 {
			p.done.Add(int64(n))
			p.commit(cl)
		}
		cl.AllowRebalance()
	}
}

func (p *bare) commit(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		p.commitErr.Store(err)
	}
}

func (p *bare) send(*testing.B) {
	for range burst {
		p.n++
		p.producer.TryProduce(context.Background(), orderRecord(p.n), func(_ *kgo.Record, err error) {
			if err != nil {
				p.lost.Add(1)
			} else {
				p.acked.Add(1)
			}
		})
	}
}

func (p *bare) progress() (int64, int64) { return p.acked.Load(), p.done.Load() }

func (p *bare) status() string {
	return fmt.Sprintf("%d produced, %d acknowledged, %d lost, %d processed, poll error %v, commit error %v",
		p.n, p.acked.Load(), p.lost.Load(), p.done.Load(), p.pollErr.Load(), p.commitErr.Load())
}

func (p *bare) check(b *testing.B, _ int) {
	// The last answers may still be on their way to the promises.
	waitUntil(b, 10*time.Second, "every record acknowledged", func() bool { return p.acked.Load()+p.lost.Load() == int64(p.n) })
	if lost := p.lost.Load(); lost > 0 || p.acked.Load() != int64(p.n) || p.done.Load() != int64(p.n) {
		b.Fatalf("%d records produced, %d acknowledged, %d lost, %d processed", p.n, p.acked.Load(), lost, p.done.Load())
	}
	for _, e := range []*atomic.Value{&p.commitErr, &p.pollErr} {
		if err := e.Load(); err != nil {
			b.Fatal(err)
		}
	}
}

// stop stops polling, then leaves the group and closes each client as the
// scenario's members do, and the producer after them.
func (p *bare) stop() error {
	p.cancel()
	p.running.Wait()
	for _, cl := range p.members {
		cl.AllowRebalance()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		cl.LeaveGroupContext(ctx)
		cancel()
		cl.Close()
	}
	if p.producer != nil {
		p.producer.Close()
	}
	p.paths.close()
	return nil
}

// BenchmarkFlush measures the article's p.flush() after every p.produce()
// against batching, with order-service's producer settings (acks all, no
// idempotent writes) through a cuttable path to an embedded kfake cluster,
// as the scenario's producer is. One op is one record produced and
// acknowledged by the broker.
//
//   - flush=each: linger 0, and Flush after every Produce, as in the article
//     and in the scenario with flush-each on: one request and one round trip
//     per record.
//   - flush=linger: linger 5 ms and no flush until the end, as in the
//     reliable preset: records share requests.
//
// Compare the two in one run (about 5 s):
//
//	go test -run '^$' -bench Flush ./scenarios/asyncmsg/
//
// -flush.latency N adds N ms on the path, as a broker that is not on the
// same machine would. The figures are records/s (acknowledged per second of
// wall time), records/cpu-s and cores, as in BenchmarkTapping.
func BenchmarkFlush(b *testing.B) {
	ignore := goleak.IgnoreCurrent()
	c := mustCluster(b)
	topic := mustLab(b).Name("orders")
	mustCreateTopic(b, c, topic)
	ps := newPaths(*flushLatency)
	defer func() {
		ps.close()
		c.Close()
		if err := goleak.Find(ignore); err != nil {
			b.Errorf("goroutines left after the benchmark: %v", err)
		}
	}()
	b.Run("flush=each", func(b *testing.B) { benchProduce(b, c, ps, topic, true) })
	b.Run("flush=linger", func(b *testing.B) { benchProduce(b, c, ps, topic, false) })
}

func benchProduce(b *testing.B, c *kfake.Cluster, ps *paths, topic string, each bool) {
	linger := 5 * time.Millisecond
	if each {
		linger = 0
	}
	cl, err := kgo.NewClient(producerOpts(c, ps, topic, linger)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	// Connected and with metadata before the clock starts.
	if err := cl.ProduceSync(ctx, orderRecord(1)).FirstErr(); err != nil {
		b.Fatal(err)
	}
	var acked, lost atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			lost.Add(1)
		} else {
			acked.Add(1)
		}
	}
	runtime.GC()
	b.ResetTimer()
	began, cpu0 := time.Now(), cpuTime()
	for i := range b.N {
		cl.Produce(ctx, orderRecord(uint64(i+1)), promise) // blocks while 10,000 wait, rather than refuse
		if each {
			cl.Flush(ctx)
		}
	}
	cl.Flush(ctx)
	cpu, wall := cpuTime()-cpu0, time.Since(began)
	b.StopTimer()
	if acked.Load() != int64(b.N) {
		b.Fatalf("%d of %d records acknowledged, %d failed", acked.Load(), b.N, lost.Load())
	}
	b.ReportMetric(float64(b.N)/wall.Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
}

// producerOpts are order-service's client options with reliable acks.
func producerOpts(c *kfake.Cluster, ps *paths, topic string, linger time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.Dialer(ps.dial),
		kgo.ClientID("order-service"),
		kgo.DefaultProduceTopic(topic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(linger),
		kgo.RecordDeliveryTimeout(10 * time.Second),
		kgo.MaxBufferedRecords(10_000),
		kgo.MetadataMaxAge(time.Second),
		kgo.MetadataMinAge(500 * time.Millisecond),
	}
}

// orderRecord is order-service's n-th order event, keyed by its order id:
// twenty orders open at a time, each placed, paid and shipped. It is built
// by the scenario's own code, so both loops pay the same for it.
func orderRecord(n uint64) *kgo.Record { return asyncmsg.OrderRecord(n) }

// paths is one cuttable path per broker address, made the first time the
// address is dialed, as the scenario's clients have.
type paths struct {
	latencyMS int
	mu        sync.Mutex
	byHost    map[string]*pathcut.Path
}

func newPaths(latencyMS int) *paths {
	return &paths{latencyMS: latencyMS, byHost: make(map[string]*pathcut.Path)}
}

func (ps *paths) dial(ctx context.Context, network, host string) (net.Conn, error) {
	ps.mu.Lock()
	p, ok := ps.byHost[host]
	if !ok {
		var err error
		if p, err = pathcut.New("bench "+host, host); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
		if err := p.SetLatency(ps.latencyMS); err != nil {
			p.Close()
			ps.mu.Unlock()
			return nil, err
		}
		ps.byHost[host] = p
	}
	ps.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, network, p.Addr())
}

func (ps *paths) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.byHost {
		p.Close()
	}
}

// mustCluster starts a one-broker kfake cluster on a random port, set up as
// the scenario's README asks.
func mustCluster(b *testing.B) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// mustCreateTopic creates topic with the scenario's default three partitions.
func mustCreateTopic(b *testing.B, c *kfake.Cluster, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, -1, nil, topic); err != nil {
		b.Fatal(err)
	}
}

func ledgerPart(st flow.Stats, name string) int64 {
	for _, c := range st.Ledger.Parts {
		if c.Name == name {
			return c.Value
		}
	}
	panic("no ledger part " + name)
}

// waitUntil polls cond every 10 ms until it holds, failing b after timeout.
func waitUntil(b *testing.B, timeout time.Duration, what string, cond func() bool) {
	b.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("after %v: still waiting for %s", timeout, what)
		}
	}
}

// cpuTime is the user and system CPU time of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
