package asyncmsg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"flowlab/flow"
)

// member is one instance of inventory-service in the consumer group: its own
// kgo client, polling, processing each record (reserving stock) and
// committing.
type member struct {
	i     int
	id    string
	s     *Scenario
	cl    *kgo.Client
	net   *netWatch
	after bool // commit after processing rather than auto-commit

	stopPolling context.CancelFunc // the batch in hand is still finished
	crash       chan struct{}      // closed: die at once
	crashed     atomic.Bool
	gone        atomic.Bool   // said goodbye: commits nothing more
	done        chan struct{} // closed when the client is closed
	sockets     *sockets

	// Reused by the member's own goroutine from batch to batch.
	msgs    []message
	scratch []byte

	mu sync.Mutex
	// owned is every partition the member holds now: kgo's
	// OnPartitionsAssigned reports only those added in a round.
	owned map[int32]bool
	// next is, per partition, the offset after the newest processed record:
	// what a commit now would store. committed is what was stored.
	next, committed map[int32]int64
	processed       int64
	errText         string
	errAt           time.Time
	crashedAt       time.Time
	lostWork        int64 // processed but not committed when it crashed
}

func (s *Scenario) startMember(rt *runtime, i int) error {
	s.mu.Lock()
	set := s.set
	s.mu.Unlock()
	m := &member{
		i:         i,
		id:        memberID(i),
		s:         s,
		net:       &netWatch{},
		after:     set.commitMode == commitAfter,
		crash:     make(chan struct{}),
		done:      make(chan struct{}),
		owned:     make(map[int32]bool),
		next:      make(map[int32]int64),
		committed: make(map[int32]int64),
		sockets:   &sockets{dial: rt.paths.Dial, open: make(map[*socket]bool)},
	}
	session := time.Duration(set.sessionTimeout) * time.Second
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.Dialer(m.sockets.Dial),
		kgo.ClientID("inventory-" + m.id),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topic),
		// A new group starts at the beginning of the log, so orders sent
		// before the first member joined are not skipped.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(min(3*time.Second, session/3)),
		// No rebalance while a batch is processed: what was processed is
		// committed before the partitions move, which keeps a clean
		// rebalance free of duplicates. Batches are kept to about a second.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(m.assigned),
		kgo.OnPartitionsRevoked(m.revoked),
		kgo.OnPartitionsLost(m.lost),
		kgo.MetadataMaxAge(time.Second),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.WithHooks(m.net),
		kgo.DisableClientMetrics(), // as order-service's producer
	}
	if m.after {
		opts = append(opts, kgo.DisableAutoCommit())
	} else {
		// Only records marked after processing are auto-committed, not
		// every record polled.
		opts = append(opts, kgo.AutoCommitMarks(), kgo.AutoCommitInterval(autoCommitEvery), kgo.AutoCommitCallback(m.commitDone))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return flow.Errorf(flow.Internal, "inventory member %s: %v", m.id, err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(rt.ctx)
	m.stopPolling = cancel
	s.mu.Lock()
	s.members[i] = m
	s.mu.Unlock()
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		m.run(ctx, rt.ctx)
	}()
	return nil
}

// detachMember forgets member i, if it runs, and tells it to stop cleanly:
// it finishes its batch, commits and leaves the group in the background,
// within goodbyeWait twice over; its done closes when it is gone.
//
// A crashed member forgotten before its session timed out stays in the
// group for the broker until then: it is remembered as a ghost.
func (s *Scenario) detachMember(i int) *member {
	s.mu.Lock()
	m := s.members[i]
	s.members[i] = nil
	if m != nil && m.isCrashed() {
		until := m.crashTime().Add(time.Duration(s.set.sessionTimeout) * time.Second)
		if time.Now().Before(until) {
			s.ghosts = append(s.ghosts, ghost{id: m.id, until: until, owned: m.ownedList()})
		}
	}
	s.mu.Unlock()
	if m != nil {
		m.stopPolling()
	}
	return m
}

// waitGone waits until every member given that is not nil is gone.
func waitGone(ms ...*member) {
	for _, m := range ms {
		if m != nil {
			<-m.done
		}
	}
}

// crashMember kills member i at once: the record in hand is not finished,
// nothing is committed and no LeaveGroup is sent.
func (s *Scenario) crashMember(i int) {
	s.mu.Lock()
	m := s.members[i]
	s.mu.Unlock()
	m.crashed.Store(true)
	m.sockets.die()
	close(m.crash)
	m.stopPolling()
	<-m.done
	m.mu.Lock()
	lost := m.lostWork
	m.mu.Unlock()
	s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, From: m.id, Detail: flow.Detail{
		Node: m.id, State: "crashed", Value: lost,
		Payload: fmt.Sprintf("crashed with %d processed records not committed: whoever gets its partitions processes them again", lost),
	}})
}

// run is the member's poll, process, commit loop.
func (m *member) run(ctx, runCtx context.Context) {
	defer close(m.done)
	defer m.close()
	for {
		fs := m.cl.PollRecords(ctx, m.batchSize())
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) { m.noteErr(err) })
		if !m.processBatch(fs.Records(), runCtx) {
			return // crashed, or the scenario is stopping
		}
		if m.after {
			m.commit(5 * time.Second)
		}
		m.cl.AllowRebalance()
	}
}

// batchSize keeps one batch to about a second of processing, so a
// rebalance waits for at most that long.
func (m *member) batchSize() int {
	_, ms := m.settings()
	if ms == 0 {
		return 500
	}
	return max(1, min(500, 1000/ms))
}

// settings are the knobs a member works with: the idempotent switch and its
// processing time. A batch is processed with the values it was polled with,
// so a change reaches the member within about a second.
func (m *member) settings() (idempotent bool, processingMS int) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.s.set.idempotent, m.s.set.processingMS[m.i]
}

// processBatch processes one polled batch record by record. What takes a
// lock shared with the producer and the other members (the ledger, the
// chart's window, the member's offsets) is done once per batch: a look-up
// of which records were processed before, and the accounting of those done.
// When records take time the accounting follows every record, so the view
// counts them as they go. It reports false when the member crashed or the
// scenario stops before the batch was done; what was done is accounted for.
func (m *member) processBatch(rs []*kgo.Record, runCtx context.Context) bool {
	if len(rs) == 0 {
		return true
	}
	s := m.s
	idempotent, processingMS := m.settings()
	msgs := m.msgs[:0]
	for _, r := range rs {
		msgs = append(msgs, m.identify(r))
	}
	m.msgs = msgs
	s.ledger.peek(msgs)
	now := time.Now() // records of one poll are delivered at once
	from := 0         // rs[from:i] are done and not yet accounted for
	for i, r := range rs {
		done, at := m.process(r, &msgs[i], idempotent, processingMS, now, runCtx)
		if !done {
			m.account(rs[from:i], msgs[from:i], idempotent, now)
			return false
		}
		now = at
		if processingMS > 0 {
			m.account(rs[from:i+1], msgs[from:i+1], idempotent, now)
			from = i + 1
		}
	}
	m.account(rs[from:], msgs[from:], idempotent, now)
	return true
}

// process delivers one record at now and spends the processing time on it;
// account then books its side effect, reserving stock for the order. It
// reports whether the record was done, and when: not when the member crashed
// or the scenario stopped first.
func (m *member) process(r *kgo.Record, msg *message, idempotent bool, processingMS int, now time.Time, runCtx context.Context) (bool, time.Time) {
	if msg.drawn {
		d := flow.Detail{Partition: r.Partition, Offset: r.Offset, Key: msg.key,
			Payload: msg.payload, Raw: msg.raw, External: msg.external, Duplicate: msg.again}
		switch {
		case msg.again && idempotent:
			d.Outcome = "duplicate: skipped by the idempotent consumer"
		case msg.again:
			d.Outcome = "duplicate: stock reserved again"
		}
		m.s.cfg.Emit.EmitDrawn(flow.Event{Time: now, Kind: flow.KindDeliver, From: partitionID(r.Partition), To: m.id, MsgID: msg.id, Detail: d})
	}

	if processingMS > 0 {
		t := time.NewTimer(time.Duration(processingMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.crash:
			return false, now
		case <-runCtx.Done():
			return false, now
		}
		now = time.Now()
	}
	select {
	case <-m.crash:
		return false, now
	default:
	}
	return true, now
}

// account books records done at done: in the ledger (the side effect), in
// the chart's second, in kgo's marks for auto-commit and in the offsets a
// commit after processing stores.
func (m *member) account(rs []*kgo.Record, msgs []message, idempotent bool, done time.Time) {
	if len(rs) == 0 {
		return
	}
	m.s.ledger.processAll(msgs, idempotent)
	m.s.window.consumedAt(rs, msgs, done)
	if !m.after {
		m.cl.MarkCommitRecords(rs...)
	}
	m.mu.Lock()
	// A poll's records come partition by partition: the maps are written
	// once per run of one partition.
	for i, r := range rs {
		if i+1 < len(rs) && rs[i+1].Partition == r.Partition {
			continue
		}
		if _, ok := m.committed[r.Partition]; !ok {
			// It started here, at the group's committed offset.
			m.committed[r.Partition] = firstOf(rs[:i+1], r.Partition)
		}
		m.next[r.Partition] = r.Offset + 1
		m.s.reach(r.Partition, r.Offset+1)
	}
	m.processed += int64(len(rs))
	m.mu.Unlock()
}

// firstOf is the offset of the first record of the run of partition p that
// ends rs.
func firstOf(rs []*kgo.Record, p int32) int64 {
	i := len(rs) - 1
	for i > 0 && rs[i-1].Partition == p {
		i--
	}
	return rs[i].Offset
}

// commit stores the offsets after every processed record and waits for the
// broker's answer, at most wait.
func (m *member) commit(wait time.Duration) {
	m.mu.Lock()
	offsets := make(map[int32]kgo.EpochOffset, len(m.next))
	for p, o := range m.next {
		if o > m.committed[p] {
			offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
	}
	m.mu.Unlock()
	m.commitSync(offsets, wait)
}

// commitSync commits offsets, if any, and waits for the broker's answer, at
// most wait.
func (m *member) commitSync(offsets map[int32]kgo.EpochOffset, wait time.Duration) {
	if len(offsets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{m.s.topic: offsets}, m.commitDone)
}

// commitDone draws each committed partition and remembers its offset; kgo
// calls it for auto-commits too.
func (m *member) commitDone(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		m.noteErr(fmt.Errorf("commit failed: %w", err))
		return
	}
	asked := make(map[int32]int64)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			asked[p.Partition] = p.Offset
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				m.noteErr(fmt.Errorf("commit of %s failed: %w", partitionID(p.Partition), err))
				continue
			}
			o := asked[p.Partition]
			m.mu.Lock()
			m.committed[p.Partition] = max(m.committed[p.Partition], o)
			m.mu.Unlock()
			m.s.cfg.Emit.Emit(flow.Event{Kind: flow.KindCommit, From: m.id, To: partitionID(p.Partition),
				Detail: flow.Detail{Partition: p.Partition, Offset: o}})
		}
	}
}

func (m *member) assigned(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps[m.s.topic] {
		m.owned[p] = true
	}
}

// revoked commits what was processed before the partitions go, unless the
// member crashed (a dead process commits nothing) or has said goodbye (its
// last commit is done, its sockets are closed).
func (m *member) revoked(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
	if !m.crashed.Load() && !m.gone.Load() {
		m.commit(5 * time.Second)
	}
	m.lost(ctx, cl, ps)
}

// lost forgets partitions the group took away without a chance to commit.
// A crashed member keeps them: its client's own close reports them lost at
// once, but the broker goes on assigning them to the dead member until its
// session times out, and that is what the view must show.
func (m *member) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	if m.crashed.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps[m.s.topic] {
		delete(m.owned, p)
		delete(m.next, p)
		delete(m.committed, p)
	}
}

// goodbyeWait bounds each step of a clean member's goodbye, its last commit
// and then its LeaveGroup: one round trip each, over a path that may add up
// to a second of latency, and both within a prompt stop of the server.
const goodbyeWait = 1500 * time.Millisecond

// close closes the client. A crashed member's sockets are already closed and
// it cannot dial, so its LeaveGroup never reaches the broker and the group
// finds out only when the session times out, as with a real crash; it
// leaves with a context already cancelled so that Close does not retry.
//
// A clean member commits what it processed and says goodbye itself, each
// within goodbyeWait, then drops its sockets before kgo closes: kgo sends its
// own LeaveGroup only after a JoinGroup in flight returns, and the broker
// holds a join until every member has rejoined — a crashed one only when its
// session times out. Waiting for that kept a command 45 s, and a LeaveGroup
// sent after its deadline left the stopped member in the group for another
// session timeout, with every partition unassigned.
func (m *member) close() {
	m.cl.AllowRebalance()
	if m.crashed.Load() {
		// Counted before the client's leave forgets the partitions.
		m.mu.Lock()
		m.crashedAt, m.lostWork = time.Now(), m.uncommittedLocked()
		m.mu.Unlock()
	} else {
		m.commitLast()
		m.leave()
		m.gone.Store(true)
		m.sockets.die()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.cl.LeaveGroupContext(ctx)
	m.cl.Close()
}

// commitLast commits what was processed and not yet committed, in either
// commit mode, so that the next owner starts after it.
func (m *member) commitLast() {
	if m.after {
		m.commit(goodbyeWait)
		return
	}
	m.mu.Lock()
	offsets := make(map[int32]kgo.EpochOffset)
	for p, o := range m.cl.MarkedOffsets()[m.s.topic] {
		if o.Offset > m.committed[p] {
			offsets[p] = o
		}
	}
	m.mu.Unlock()
	m.commitSync(offsets, goodbyeWait)
}

// leave sends the member's LeaveGroup on its own connection (kgo keeps joins
// on another), through its own path: when the path is cut it does not
// arrive, and the group waits for the session timeout as it would for any
// client that cannot reach the broker.
func (m *member) leave() {
	id, _ := m.cl.GroupMetadata()
	if id == "" {
		return // never joined
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = m.s.group, id
	who := kmsg.NewLeaveGroupRequestMember()
	who.MemberID, who.Reason = id, kmsg.StringPtr("stopped by flowlab")
	req.Members = append(req.Members, who)
	ctx, cancel := context.WithTimeout(context.Background(), goodbyeWait)
	defer cancel()
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		m.noteErr(fmt.Errorf("could not leave the group: %w", err))
	}
}

func (m *member) noteErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errText, m.errAt = err.Error(), time.Now()
}

func (m *member) isCrashed() bool { return m.crashed.Load() }

// uncommittedLocked counts records processed but not committed.
func (m *member) uncommittedLocked() int64 {
	var n int64
	for p, o := range m.next {
		n += max(0, o-m.committed[p])
	}
	return n
}

// crashTime is when the member crashed; zero while it runs, and until its
// client is closed.
func (m *member) crashTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashedAt
}

// ownedList is the member's partitions, sorted.
func (m *member) ownedList() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]int32, 0, len(m.owned))
	for p := range m.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// sockets are a member's connections to the broker, so that a crash can
// drop them all at once the way a dying process does. kgo sends LeaveGroup
// while closing even with a cancelled context; only a dead socket keeps it
// from the broker.
type sockets struct {
	dial func(ctx context.Context, network, host string) (net.Conn, error)
	mu   sync.Mutex
	open map[*socket]bool
	dead bool
}

func (ss *sockets) Dial(ctx context.Context, network, host string) (net.Conn, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dead {
		return nil, errors.New("the member's process is dead")
	}
	c, err := ss.dial(ctx, network, host)
	if err != nil {
		return nil, err
	}
	s := &socket{Conn: c, of: ss}
	ss.open[s] = true
	return s, nil
}

// die closes every socket and refuses new ones.
func (ss *sockets) die() {
	ss.mu.Lock()
	ss.dead = true
	open := ss.open
	ss.open = nil
	ss.mu.Unlock()
	for s := range open {
		s.Conn.Close()
	}
}

type socket struct {
	net.Conn
	of *sockets
}

func (s *socket) Close() error {
	s.of.mu.Lock()
	delete(s.of.open, s)
	s.of.mu.Unlock()
	return s.Conn.Close()
}

// message is what flowlab knows of a record it consumed.
type message struct {
	id       string
	n        uint64 // order-service's event number in this run, 0 for others
	external bool   // an outside client wrote it
	key      string
	payload  string
	raw      bool
	again    bool // processed before it was delivered this time
	drawn    bool // its hops are passed on to the view (see flow.Emitter.Sample)
}

// maxPayload is how much of a payload an event carries.
const maxPayload = 300

// identify names a consumed record: order-service's own of this run by its
// bytes, an earlier run's or an outside client's by an id given at first
// sight. Any bytes are accepted; what is not JSON is shown quoted, as raw
// bytes. This run's own records are JSON that sendOrders wrote, so only
// other records are checked. Key, payload and id are copied into one
// string, through the member's scratch buffer: one allocation for the
// three, and none for this run's records that the view does not draw, which
// need only their number.
func (m *member) identify(r *kgo.Record) message {
	s := m.s
	n, earlier := s.ownNumber(r)
	var id []byte
	if n > 0 {
		var buf [32]byte
		id = strconv.AppendUint(append(buf[:0], s.runPrefix...), n, 10)
	}
	// Outside clients' records are always drawn; this run's own as their
	// producer judged them when they were born; an earlier run's below.
	drawn := n == 0 || s.cfg.Emit.DrawsBytes(id, r.Timestamp)
	if n > 0 && !drawn {
		return message{n: n}
	}
	value := r.Value[:min(len(r.Value), maxPayload)]
	b := append(m.scratch[:0], r.Key...)
	b = append(b, value...)
	b = append(b, id...)
	m.scratch = b
	str := string(b)
	k, v := len(r.Key), len(r.Key)+len(value)
	msg := message{key: str[:k], payload: str[k:v], id: str[v:], n: n, drawn: drawn}
	switch {
	case earlier:
		msg.id = s.outside.id("earlier-", r.Partition, r.Offset)
		// A replay of thousands is judged as a new message like any other.
		msg.drawn = s.cfg.Emit.Draws(msg.id, r.Timestamp)
	case n == 0:
		msg.id, msg.external = s.outside.id("ext-", r.Partition, r.Offset), true
	}
	if msg.n == 0 && !json.Valid(r.Value) {
		msg.payload, msg.raw = strconv.QuoteToASCII(msg.payload), true
	}
	return msg
}

// ownNumber is n when r is order-service's event n of this run: its key and
// value are byte for byte what order-service writes for n, it was written
// after this run began, and n was handed to the producer. earlier is true
// for such an event that an earlier run wrote.
func (s *Scenario) ownNumber(r *kgo.Record) (n uint64, earlier bool) {
	const head, kind = `{"order_id":`, `,"type":"order_`
	rest, ok := bytes.CutPrefix(r.Value, []byte(head))
	if ok {
		rest, ok = bytes.CutPrefix(rest, r.Key)
	}
	if ok {
		rest, ok = bytes.CutPrefix(rest, []byte(kind))
	}
	order, digits := uint64(0), len(r.Key) > 0 && len(r.Key) < 19 && r.Key[0] != '0'
	for _, c := range r.Key {
		digits = digits && c >= '0' && c <= '9'
		order = order*10 + uint64(c-'0')
	}
	if !ok || !digits {
		return 0, false
	}
	step := slices.IndexFunc(stepTails[:], func(tail []byte) bool { return bytes.HasPrefix(rest, tail) })
	if step < 0 {
		return 0, false
	}
	n = eventOf(int(order), step)
	var buf [128]byte
	b, k := appendOrder(buf[:0], n)
	switch {
	case !bytes.Equal(b[:k], r.Key) || !bytes.Equal(b[k:], r.Value):
		return 0, false
	case r.Timestamp.Before(s.began):
		return 0, true
	case n > uint64(s.ledger.made.Load()):
		return 0, false // not handed to the producer: someone else wrote it
	}
	return n, false
}

// stepTails are what follows "order_" in each step's "type", in the order of
// orderSteps.
var stepTails = [3][]byte{[]byte(`placed"`), []byte(`paid"`), []byte(`shipped"`)}

// outsideIDs gives records from outside clients ids of their own, the same
// one each time the same record is consumed again.
type outsideIDs struct {
	mu   sync.Mutex
	ids  map[[2]int64]string // partition, offset
	next int
}

func newOutsideIDs() *outsideIDs { return &outsideIDs{ids: make(map[[2]int64]string)} }

func (o *outsideIDs) id(prefix string, p int32, offset int64) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := [2]int64{int64(p), offset}
	if id, ok := o.ids[k]; ok {
		return id
	}
	if len(o.ids) >= maxOutsideSeen {
		clear(o.ids)
	}
	o.next++
	id := prefix + strconv.Itoa(o.next)
	o.ids[k] = id
	return id
}

// reset forgets every id: the topic was recreated and offsets start again.
func (o *outsideIDs) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.ids)
}
