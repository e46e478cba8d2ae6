package asyncmsg

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

// recordState is where one order event of order-service is now. Every event
// is in exactly one state, so the ledger's parts always add up to the total.
type recordState uint8

const (
	waiting   recordState = iota // handed to the producer, no answer from the broker yet
	refused                      // the producer's buffer was full: never sent
	failed                       // the producer gave up on it
	inLog                        // the broker has it; no member processed it yet
	processed                    // a member processed it at least once
	deleted                      // in the log when the topic was recreated
	expired                      // deleted by retention before any member processed it
	numStates
)

var stateParts = [numStates]flow.Counter{
	waiting:   {Name: "waiting", Label: "waiting for the broker"},
	refused:   {Name: "refused", Label: "refused: producer buffer full"},
	failed:    {Name: "failed", Label: "failed to produce"},
	inLog:     {Name: "in-log", Label: "in the log, not yet processed"},
	processed: {Name: "processed", Label: "processed"},
	deleted:   {Name: "deleted", Label: "deleted with the topic"},
	expired:   {Name: "expired", Label: "deleted by retention before processing"},
}

// ledger accounts for every order event order-service produced, by its
// number n (1, 2, …): one byte each, so a lab at 2,000 events/s grows by
// about 7 MB an hour, a price paid for exact accounting and for an idempotent
// consumer that never forgets.
type ledger struct {
	mu     sync.Mutex
	states []recordState // index n-1
	counts [numStates]int64
	made   atomic.Int64 // len(states), for members to read without the lock

	acked       int64 // confirmed by the broker (acks all or leader)
	redelivered int64 // deliveries of a record some member processed before
	duplicates  int64 // side effects done again: stock reserved twice
	skipped     int64 // deliveries the idempotent consumer recognised
	reserved    int64 // side effects done: stock reservations
	external    int64 // records from outside clients or an earlier run, processed once
	// seenOutside counts how often each record from outside (or from an
	// earlier run) was processed, by message id: their dedupe table.
	seenOutside map[string]int
	// logged is, per partition and in offset order, where the broker put
	// each event that may still be in the log unprocessed, so that one the
	// retention deletes first is counted expired (see trimmed). Processed
	// ones leave from the front; it holds about the group's lag.
	logged [maxPartitions][]placed
	topics int // topics deleted: offsets read before one are of another log
}

// placed is event n at an offset of its partition.
type placed struct {
	offset int64
	n      uint64
}

func newLedger() *ledger { return &ledger{seenOutside: make(map[string]int)} }

// maxOutsideSeen bounds the outside records remembered for dedupe; past it
// the table starts again, so a replay of more outside records than this
// counts them once more. order-service's own events are never forgotten.
const maxOutsideSeen = 100_000

// add records k new events handed to the producer and returns the number
// of the first.
func (l *ledger) add(st recordState, k int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := uint64(len(l.states)) + 1
	for range k {
		l.states = append(l.states, st)
	}
	l.counts[st] += int64(k)
	l.made.Store(int64(len(l.states)))
	return first
}

// produced records the producer's answer for event n, written at offset of
// partition; confirmed is false with acks none, where success only means
// the bytes were written and the offset is not known.
func (l *ledger) produced(n uint64, err error, confirmed bool, partition int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && confirmed {
		l.acked++
	}
	if l.states[n-1] != waiting {
		return // a member processed it before the answer arrived
	}
	if err != nil {
		l.move(n, failed)
		return
	}
	l.move(n, inLog)
	if confirmed && partition >= 0 && partition < maxPartitions {
		l.logged[partition] = append(l.logged[partition], placed{offset, n})
	}
}

// trimmed takes every partition's first offset in the log, as the broker
// reported it while log() was topics: an event before it that no member
// processed was deleted by the retention and is counted expired, not left
// "in the log" for ever. With acks none the producer never learns an
// event's offset, so such an event stays counted in the log.
func (l *ledger) trimmed(topics int, parts []partitionRead) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if topics != l.topics {
		return // read from the log of a topic since deleted
	}
	for p, part := range parts[:min(len(parts), maxPartitions)] {
		start := part.start
		q := l.logged[p]
		i := 0
		for ; i < len(q); i++ {
			st := l.states[q[i].n-1]
			if st == inLog && q[i].offset < start {
				l.move(q[i].n, expired)
			} else if st == inLog {
				break // still in the log, waiting for a member
			}
		}
		l.logged[p] = q[i:]
	}
}

// processAll records that a member finished processing these records,
// under one lock. Each is order-service's event n of this run, or deduped
// by its message id.
func (l *ledger) processAll(msgs []message, idempotent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, msg := range msgs {
		if msg.n > 0 {
			l.processLocked(msg.n, idempotent)
		} else {
			l.processOutsideLocked(msg.id, idempotent)
		}
	}
}

// processLocked records that a member finished processing event n.
func (l *ledger) processLocked(n uint64, idempotent bool) {
	if n > uint64(len(l.states)) {
		return
	}
	again := l.states[n-1] == processed
	l.move(n, processed)
	l.sideEffect(again, idempotent)
}

// processOutsideLocked is processLocked for a record order-service did not
// produce in this run, deduped by its message id.
func (l *ledger) processOutsideLocked(id string, idempotent bool) {
	if len(l.seenOutside) >= maxOutsideSeen {
		clear(l.seenOutside)
	}
	again := l.seenOutside[id] > 0
	l.seenOutside[id]++
	if !again {
		l.external++
	}
	l.sideEffect(again, idempotent)
}

// externalSeen is how many records from outside clients or an earlier run
// were processed.
func (l *ledger) externalSeen() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.external
}

// sideEffect counts a processed record's side effect: a stock reservation,
// unless the idempotent consumer skips a record processed before.
func (l *ledger) sideEffect(again, idempotent bool) {
	switch {
	case again && idempotent:
		l.redelivered++
		l.skipped++
		return
	case again:
		l.redelivered++
		l.duplicates++
	}
	l.reserved++
}

// refuse records that the producer's buffer was full for event n.
func (l *ledger) refuse(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.move(n, refused)
}

// peek marks the messages that were processed already, under one lock.
func (l *ledger) peek(msgs []message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range msgs {
		msg := &msgs[i]
		if msg.n > 0 {
			msg.again = msg.n <= uint64(len(l.states)) && l.states[msg.n-1] == processed
		} else {
			msg.again = l.seenOutside[msg.id] > 0
		}
	}
}

// topicDeleted moves every event still in the log to deleted.
func (l *ledger) topicDeleted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, st := range l.states {
		if st == inLog {
			l.move(uint64(i+1), deleted)
		}
	}
	clear(l.logged[:]) // the new topic's offsets start again at 0
	l.topics++
}

// log returns how many topics were deleted, for trimmed.
func (l *ledger) log() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.topics
}

func (l *ledger) move(n uint64, to recordState) {
	l.counts[l.states[n-1]]--
	l.states[n-1] = to
	l.counts[to]++
}

// snapshot returns the ledger and the counters in the flow shapes.
func (l *ledger) snapshot() (flow.Ledger, []flow.Counter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	parts := make([]flow.Counter, 0, numStates)
	for st, c := range stateParts {
		c.Value = l.counts[st]
		parts = append(parts, c)
	}
	dup := flow.Counter{Name: "duplicates", Label: "processed again: stock reserved twice", Value: l.duplicates}
	led := flow.Ledger{
		Total:      flow.Counter{Name: "produced", Label: "produced by order-service", Value: int64(len(l.states))},
		Parts:      parts,
		Duplicates: &dup,
	}
	counters := []flow.Counter{
		{Name: "produced", Label: "produced by order-service", Value: int64(len(l.states))},
		{Name: "acked", Label: "acknowledged by the broker", Value: l.acked},
		{Name: "failed", Label: "failed to produce", Value: l.counts[failed]},
		{Name: "refused", Label: "refused: producer buffer full", Value: l.counts[refused]},
		{Name: "expired", Label: "deleted by retention before processing", Value: l.counts[expired]},
		{Name: "processed", Label: "processed at least once", Value: l.counts[processed]},
		{Name: "redeliveries", Label: "delivered again after processing", Value: l.redelivered},
		{Name: "duplicates", Label: "processed again: stock reserved twice", Value: l.duplicates},
		{Name: "skipped", Label: "skipped by the idempotent consumer", Value: l.skipped},
		{Name: "reserved", Label: "stock reservations made", Value: l.reserved},
		{Name: "outside-messages", Label: "records from outside clients or earlier runs", Value: l.external},
	}
	return led, counters
}

// window gathers what happened in the current second for the chart:
// throughput is records processed, success the share of the producer's
// answers that were acknowledgements (kept from the second before when there
// were none), the percentiles are produce → processed for order-service's
// records, and depth is the group's total lag. The producer's outcomes are
// counted without a lock, in its promise goroutine; members add their
// records a batch at a time.
type window struct {
	ok, bad atomic.Int64 // producer outcomes

	mu        sync.Mutex
	consumed  int
	latencies []float64 // produce → processed, ms
	success   float64   // carried over a second with no outcomes
}

func newWindow() *window { return &window{success: 100} }

// maxLatencies bounds one second's samples; at 2,000 events/s it keeps all.
const maxLatencies = 10_000

func (w *window) producedOK(ok bool) {
	if ok {
		w.ok.Add(1)
	} else {
		w.bad.Add(1)
	}
}

// consumedAt counts records processed at done. The latency is known for
// order-service's records of this run; an outside client's clock is not
// ours.
func (w *window) consumedAt(rs []*kgo.Record, msgs []message, done time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.consumed += len(rs)
	for i, r := range rs {
		if msgs[i].n > 0 && len(w.latencies) < maxLatencies {
			w.latencies = append(w.latencies, float64(done.Sub(r.Timestamp).Microseconds())/1000)
		}
	}
}

// point closes the second that lasted elapsed and returns its chart point.
func (w *window) point(now time.Time, elapsed time.Duration, depth int64) flow.Point {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok, bad := w.ok.Swap(0), w.bad.Swap(0); ok+bad > 0 {
		w.success = 100 * float64(ok) / float64(ok+bad)
	}
	slices.Sort(w.latencies)
	p := flow.Point{
		Time:       now,
		Throughput: float64(w.consumed) / elapsed.Seconds(),
		Success:    w.success,
		P50MS:      percentile(w.latencies, 0.50),
		P99MS:      percentile(w.latencies, 0.99),
		Depth:      float64(depth),
	}
	w.consumed = 0
	w.latencies = w.latencies[:0]
	return p
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}
