package eventdriven

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"flowlab/scenarios/internal/rabbit"
)

// The ledger counts copies, not messages. A fanout exchange gives every bound
// queue its own copy, and each consumer owes the learner an account of its
// copy: so every message order-service publishes adds one copy per consumer
// (three), whether or not that consumer's queue existed then. Each copy is, at
// any moment, exactly one of:
//
//   - in flight: routed or on its way, in a queue, or delivered and not yet
//     settled (unacked, or in a consumer's memory);
//   - acked: processed by the consumer (after its ack, or auto-acked and
//     processed);
//   - dead-lettered: rejected without requeue, now in the DLQ;
//   - dropped: lost for real: no queue to route it to (an exclusive queue whose
//     consumer was down, or a mandatory return), gone with a deleted exclusive
//     queue, or auto-acked and never processed (crash, stop, poison).
//
// so published × 3 = acked + in flight + dead-lettered + dropped always holds.
// Two things are counted apart: redeliveries, copies the broker hands a
// consumer again (after a crash, a requeue, a reject); and duplicates, copies
// a consumer processed a second time, its work done twice. A redelivery is a
// duplicate only when the consumer had processed that copy before (it crashed
// after its work and before its ack): a requeued poison event, delivered a
// hundred times and never processed, is no duplicate at all. Messages from
// outside clients are counted apart too: flowlab did not publish them, so they
// owe nothing.
//
// Where flowlab cannot know, it says in flight rather than guess, until the
// broker shows what happened. A publish whose connection died before its
// confirm may or may not have reached the broker: order-service publishes it
// again, and a consumer that then gets it twice counts a redelivery. Without
// confirms order-service cannot know which publishes a dying connection
// swallowed, so every message it sent on that connection is in doubt, as is
// every copy sent while a new exclusive queue was being bound: a copy in
// doubt that its consumer has not received is dropped once a later message
// reaches the consumer first, or once its queue is seen empty (queues are
// first in, first out). A poison message requeued for ever never settles. A
// copy counted dropped that turns up after all (published in the instant its
// exclusive queue was being bound) goes back in flight.
type ledger struct {
	consumers []string // the copies of a message, in this order
	idPrefix  string

	mu        sync.Mutex
	seq       uint64
	sends     uint64             // publishes to the exchange, sends again included
	open      map[string]*record // messages with a copy still in flight
	doubtful  [][]*record        // per consumer, oldest first: its copies in doubt
	recent    []*record          // settled messages, a ring kept for look-ups
	recentIdx map[string]*record
	next      int
	present   []bool // whether consumer i's queue exists now
	totals    copyTotals
	per       []copyTotals
	published int64
	confirmed int64
	returned  int64
	external  int64
}

// recentMessages bounds how many settled messages stay available to Message.
const recentMessages = 4096

type copyTotals struct {
	acked, inFlight, dead, dropped, redelivered, rejected int64
	duplicates                                            int64 // in the totals only
}

type copyState int

const (
	pending   copyState = iota // published, not (or no longer) in a consumer's hands
	delivered                  // in the consumer's hands, not settled
	acked
	deadLettered
	dropped
)

type record struct {
	id        string
	seq       uint64
	order     uint64    // when it was last sent to the exchange, in sends
	doubt     time.Time // when it was last put in doubt (see doubtSince)
	confirmed bool
	returned  bool
	copies    []copyRecord
}

type copyRecord struct {
	state      copyState
	deliveries int
	rejections int
	processed  int    // how often the consumer did its work on it
	why        string // why it was dropped
}

// newLedger starts a ledger whose message ids are ord-<run>-<n>. The run part
// differs each time flowlab starts, so that messages a durable queue kept
// from an earlier run are never taken for this run's.
func newLedger(consumers []string) *ledger {
	return &ledger{
		consumers: consumers,
		idPrefix:  fmt.Sprintf("ord-%04x-", rand.N(0x10000)),
		open:      make(map[string]*record),
		doubtful:  make([][]*record, len(consumers)),
		recentIdx: make(map[string]*record),
		present:   make([]bool, len(consumers)),
		per:       make([]copyTotals, len(consumers)),
	}
}

// publish opens the record of a new message and says, per consumer, whether
// its copy was routed (its queue exists) or dropped at once.
func (l *ledger) publish() (id string, seq uint64, routed []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	l.sends++
	r := &record{id: l.idPrefix + strconv.FormatUint(l.seq, 10), seq: l.seq, order: l.sends, copies: make([]copyRecord, len(l.consumers))}
	routed = make([]bool, len(l.consumers))
	l.published++
	for i := range r.copies {
		l.totals.inFlight++
		l.per[i].inFlight++
		routed[i] = l.present[i]
		if !routed[i] {
			l.move(r, i, dropped, "no queue bound: the consumer's exclusive queue is gone")
		}
	}
	l.open[r.id] = r
	l.settleIfDone(r)
	return r.id, r.seq, routed
}

// unpublish forgets a message whose publish failed before it left flowlab.
func (l *ledger) unpublish(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok {
		return
	}
	for i := range r.copies {
		l.count(i, r.copies[i].state, -1)
	}
	l.published--
	delete(l.open, id)
	delete(l.recentIdx, id)
}

// nextSend is the order the next publish to the exchange will have.
func (l *ledger) nextSend() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sends + 1
}

// sendAgain records that message id goes to the exchange once more, since
// its first publish was never confirmed, and says per consumer whether a
// queue is there to take the copy. Its copies keep their states: the one the
// consumer gets first settles it, any later one is a redelivery.
func (l *ledger) sendAgain(id string) (routed []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	routed = slices.Clone(l.present)
	if r, ok := l.find(id); ok {
		l.sends++
		r.order = l.sends
	}
	return routed
}

// doubtSince puts in doubt every copy a consumer has not received of the
// messages sent since the send numbered from: they went out without a
// confirm on a connection that died at, and the broker may never have had
// them.
func (l *ledger) doubtSince(from uint64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putInDoubt(from, at, func(int) bool { return true })
}

// doubtBinding puts in doubt consumer c's copies of the messages sent since
// the send numbered from, while its new exclusive queue was being declared
// and bound (until at): each reached the queue only if the binding was there
// in time.
func (l *ledger) doubtBinding(c int, from uint64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putInDoubt(from, at, func(i int) bool { return i == c })
}

func (l *ledger) putInDoubt(from uint64, at time.Time, consumer func(int) bool) {
	var sent []*record
	for _, r := range l.open {
		if r.order >= from {
			sent = append(sent, r)
		}
	}
	slices.SortFunc(sent, func(a, b *record) int { return cmp.Compare(a.order, b.order) })
	for _, r := range sent {
		r.doubt = at
		for c, cp := range r.copies {
			if consumer(c) && cp.state == pending && cp.deliveries == 0 {
				l.doubtful[c] = append(l.doubtful[c], r)
			}
		}
	}
}

// The reasons a copy in doubt is counted dropped.
const (
	lostBeforeLater = "never reached the queue (sent without a confirm on a connection that died, or while the queue was being bound): a later event arrived first"
	lostQueueEmpty  = "never reached the queue (sent without a confirm on a connection that died, or while the queue was being bound): the queue was empty afterwards"
)

// doubtSettle is how long after order-service noticed its connection died a
// queue seen empty shows that a copy in doubt is not there. By then the
// broker has taken in whatever reached it, and has noticed a consumer that
// went silent with the same path and handed back what it had sent it (the
// broker, too, notices only when heartbeats stop).
const doubtSettle = 3 * rabbit.Heartbeat

// queueEmpty settles the doubt about consumer c's copies when the broker,
// asked at readAt, said c's queue held no message ready: a copy c has not
// received is not there.
func (l *ledger) queueEmpty(c int, readAt time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropDoubtful(c, lostQueueEmpty, func(r *record) bool { return readAt.After(r.doubt.Add(doubtSettle)) })
}

// dropDoubtful drops consumer c's copies in doubt, oldest first, while gone
// says they are; a copy received meanwhile is simply no longer in doubt.
func (l *ledger) dropDoubtful(c int, why string, gone func(*record) bool) []string {
	var ids []string
	q := l.doubtful[c]
	for len(q) > 0 && gone(q[0]) {
		r := q[0]
		q[0], q = nil, q[1:]
		if cp := r.copies[c]; cp.state == pending && cp.deliveries == 0 {
			l.move(r, c, dropped, why)
			l.settleIfDone(r)
			ids = append(ids, r.id)
		}
	}
	if len(q) == 0 {
		q = nil // let the array go
	}
	l.doubtful[c] = q
	return ids
}

// confirm records the broker's confirm of a publish.
func (l *ledger) confirm(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.find(id); ok {
		r.confirmed = true
		l.confirmed++
	}
}

// returnMessage records a mandatory publish the broker sent back: no queue
// took it, so every copy still thought in flight is dropped. It returns the
// consumers whose copy was thought routed until now.
func (l *ledger) returnMessage(id string) (lost []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok || r.returned {
		return nil
	}
	r.returned = true
	l.returned++
	for i := range r.copies {
		if r.copies[i].state == pending {
			l.move(r, i, dropped, "returned unroutable")
			lost = append(lost, i)
		}
	}
	l.settleIfDone(r)
	return lost
}

// setPresent records whether consumer c's queue exists.
func (l *ledger) setPresent(c int, present bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.present[c] = present
}

// queueGone marks every unsettled copy of consumer c dropped: its queue was
// deleted (an exclusive queue dies with its connection), taking them along.
// It returns the ids, so that each loss is shown.
func (l *ledger) queueGone(c int, why string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.present[c] = false
	var ids []string
	for _, r := range l.open {
		if s := r.copies[c].state; s == pending || s == delivered {
			l.move(r, c, dropped, why)
			ids = append(ids, r.id)
		}
	}
	for _, id := range ids {
		l.settleIfDone(l.open[id])
	}
	return ids
}

// sweepBefore drops consumer c's pending copies published before message id.
// A fresh exclusive queue receives messages in publish order, so when its first
// message is id, the older ones never reached it: they were published while it
// was being declared and bound.
func (l *ledger) sweepBefore(c int, id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, ok := l.find(id)
	if !ok {
		return nil
	}
	var ids []string
	for _, r := range l.open {
		if r.order < first.order && r.copies[c].state == pending {
			l.move(r, c, dropped, "published before the new queue was bound")
			ids = append(ids, r.id)
		}
	}
	for _, id := range ids {
		l.settleIfDone(l.open[id])
	}
	return ids
}

// deliver records that consumer c received message id, for the attempt-th
// time; redelivered is the broker's flag. known is false for a message
// flowlab did not publish. A first delivery settles the doubt about c's
// copies sent before it: a queue hands messages out in the order they were
// sent, so an older copy not received yet never reached it. lost are the ids
// of those copies, now dropped.
func (l *ledger) deliver(c int, id string, redelivered bool) (known bool, attempt int, lost []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok {
		return false, 1, nil
	}
	if r.copies[c].deliveries == 0 && !redelivered && len(l.doubtful[c]) > 0 {
		lost = l.dropDoubtful(c, lostBeforeLater, func(older *record) bool { return older.order < r.order })
	}
	// A copy counted lost too early (published in the instant its queue was
	// bound, or in doubt) that arrived after all, or one that comes again
	// after it was settled, is in flight again.
	l.open[r.id] = r
	cp := &r.copies[c]
	cp.deliveries++
	if cp.deliveries > 1 {
		l.totals.redelivered++
		l.per[c].redelivered++
	}
	l.move(r, c, delivered, "")
	return true, cp.deliveries, lost
}

// processed records that consumer c did its work on its copy of id, and
// reports whether it had done so before: a duplicate.
func (l *ledger) processed(c int, id string) (duplicate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok {
		return false
	}
	cp := &r.copies[c]
	cp.processed++
	if cp.processed > 1 {
		l.totals.duplicates++
	}
	return cp.processed > 1
}

// settle ends consumer c's copy of id: acked, dead-lettered or dropped; or
// back to pending when the broker will deliver it again (requeued, or unacked
// when the connection closed).
func (l *ledger) settle(c int, id string, to copyState, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok || r.copies[c].state != delivered {
		return
	}
	if to == pending || to == deadLettered {
		r.copies[c].rejections++
		l.totals.rejected++
		l.per[c].rejected++
	}
	l.move(r, c, to, why)
	l.settleIfDone(r)
}

// release puts consumer c's copy of id back in flight without a rejection:
// its connection closed unacked, so the broker will deliver it again.
func (l *ledger) release(c int, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.find(id); ok && r.copies[c].state == delivered {
		l.move(r, c, pending, "")
	}
}

func (l *ledger) countExternal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.external++
}

// move changes one copy's state and keeps the totals in step.
func (l *ledger) move(r *record, c int, to copyState, why string) {
	l.count(c, r.copies[c].state, -1)
	r.copies[c].state = to
	r.copies[c].why = why
	l.count(c, to, +1)
}

func (l *ledger) count(c int, s copyState, d int64) {
	for _, t := range []*copyTotals{&l.totals, &l.per[c]} {
		switch s {
		case pending, delivered:
			t.inFlight += d
		case acked:
			t.acked += d
		case deadLettered:
			t.dead += d
		case dropped:
			t.dropped += d
		}
	}
}

// settleIfDone moves a message whose copies are all settled out of the open
// set into the ring of recent ones.
func (l *ledger) settleIfDone(r *record) {
	if r == nil {
		return
	}
	for _, cp := range r.copies {
		if cp.state == pending || cp.state == delivered {
			return
		}
	}
	delete(l.open, r.id)
	if _, ok := l.recentIdx[r.id]; ok {
		return
	}
	if len(l.recent) < recentMessages {
		l.recent = append(l.recent, r)
	} else {
		delete(l.recentIdx, l.recent[l.next].id)
		l.recent[l.next] = r
		l.next = (l.next + 1) % recentMessages
	}
	l.recentIdx[r.id] = r
}

func (l *ledger) find(id string) (*record, bool) {
	if r, ok := l.open[id]; ok {
		return r, true
	}
	r, ok := l.recentIdx[id]
	return r, ok
}

// Message is the ledger's account of one message order-service published.
type Message struct {
	ID        string
	Confirmed bool // the broker confirmed it (publisher confirms on)
	Returned  bool // the broker returned it unroutable (mandatory on)
	Copies    map[string]Copy
}

// Copy is one consumer's copy of a message.
type Copy struct {
	State      string // in-flight, acked, dead-lettered or dropped
	Deliveries int    // how often the broker delivered it; above 1 are redeliveries
	Rejections int    // how often the consumer rejected it
	Processed  int    // how often the consumer did its work on it; above 1 are duplicates
	Why        string // for a dropped copy, how it was lost
}

func (l *ledger) message(id string) (Message, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.find(id)
	if !ok {
		return Message{}, false
	}
	m := Message{ID: r.id, Confirmed: r.confirmed, Returned: r.returned, Copies: make(map[string]Copy)}
	for i, cp := range r.copies {
		m.Copies[l.consumers[i]] = Copy{State: cp.state.String(), Deliveries: cp.deliveries, Rejections: cp.rejections, Processed: cp.processed, Why: cp.why}
	}
	return m, true
}

func (s copyState) String() string {
	switch s {
	case acked:
		return "acked"
	case deadLettered:
		return "dead-lettered"
	case dropped:
		return "dropped"
	}
	return "in-flight"
}

// ledgerSnapshot is a consistent copy of the counts.
type ledgerSnapshot struct {
	published, confirmed, returned, external int64
	totals                                   copyTotals
	per                                      []copyTotals
}

func (l *ledger) snapshot() ledgerSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ledgerSnapshot{
		published: l.published, confirmed: l.confirmed, returned: l.returned, external: l.external,
		totals: l.totals, per: append([]copyTotals(nil), l.per...),
	}
}
