package workqueue

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
)

// The ledger follows each email job order-service publishes. A job is, at any
// moment, exactly one of:
//
//   - in flight: in the emails queue, in a worker's hands, or waiting out a
//     retry delay in a retry queue;
//   - acked: its email was sent and the worker acked it;
//   - dead-lettered: it failed its last allowed attempt and sits in the DLQ;
//   - dropped: lost for real: the broker refused its publish (a nack).
//
// so published = acked + in flight + dead-lettered + dropped always holds.
//
// Two things are counted apart. A redelivery is a job handed to a worker
// again: after a worker stopped or crashed holding it unacked, or a copy
// that shows up again after it was settled (a worker crashed between
// publishing the retry and acking the original; or order-service published
// it again because its first publish was never confirmed, yet had reached
// the queue). A duplicate is a side effect done twice: a job whose email went
// out again, because the worker that sent it first never acked it. Most
// redeliveries are no duplicates: a job handed back before its email went
// out is sent once.
type ledger struct {
	idPrefix string

	mu          sync.Mutex
	seq         uint64
	open        map[string]*entry
	recent      []*entry // settled jobs, a ring kept for look-ups
	recentIdx   map[string]*entry
	next        int
	count       [dropped + 1]int64 // jobs per state
	published   int64
	retries     int64
	redelivered int64
	duplicates  int64
}

// recentJobs bounds how many settled jobs stay available to Job.
const recentJobs = 4096

type jobState int

const (
	queued       jobState = iota // in the emails queue
	working                      // in a worker's hands
	waiting                      // in a retry queue, waiting out its delay
	acked                        // sent
	deadLettered                 // failed for good, in the DLQ
	dropped                      // lost: its publish was not confirmed
)

func (s jobState) String() string {
	return [...]string{"queued", "working", "waiting to retry", "acked", "dead-lettered", "dropped"}[s]
}

func (s jobState) settled() bool { return s >= acked }

type entry struct {
	id         string
	state      jobState
	attempt    int // the attempt under way or next
	deliveries int
	sent       int // how often its email went out
}

// newLedger starts a ledger whose job ids are mail-<run>-<n>; the run part
// keeps jobs a durable queue kept from an earlier run apart from this run's.
func newLedger() *ledger {
	return &ledger{
		idPrefix:  fmt.Sprintf("mail-%04x-", rand.N(0x10000)),
		open:      make(map[string]*entry),
		recentIdx: make(map[string]*entry),
	}
}

// publish opens the record of a new job, queued for its first attempt.
func (l *ledger) publish() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	j := &entry{id: l.idPrefix + strconv.FormatUint(l.seq, 10), attempt: 1}
	l.open[j.id] = j
	l.count[queued]++
	l.published++
	return j.id
}

// unpublish forgets a job whose publish failed before it left flowlab.
func (l *ledger) unpublish(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j, ok := l.open[id]; ok {
		l.count[j.state]--
		l.published--
		delete(l.open, id)
	}
}

// deliver records that a worker received job id for the given attempt;
// redelivered says the broker had handed this very message out before. It
// reports whether the job is flowlab's and whether this is a redelivery.
func (l *ledger) deliver(id string, attempt int, redelivered bool) (known, again bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.find(id)
	if !ok {
		return false, false
	}
	// A copy the broker does not flag can still be a second copy: a job
	// published again after an unconfirmed publish that did reach the queue,
	// arriving while or after the first copy is worked on.
	again = redelivered || j.state.settled() || j.state == working || attempt < j.attempt
	if again {
		l.redelivered++
	}
	j.deliveries++
	j.attempt = max(j.attempt, attempt)
	l.move(j, working)
	return true, again
}

// sent records that job id's email went out, and reports whether it had gone
// out before: a duplicate.
func (l *ledger) sent(id string) (duplicate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.find(id)
	if !ok {
		return false
	}
	j.sent++
	if j.sent > 1 {
		l.duplicates++
	}
	return j.sent > 1
}

// retry records that attempt failed and the job waits in a retry queue.
func (l *ledger) retry(id string, attempt int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j, ok := l.find(id); ok {
		l.retries++
		j.attempt = attempt + 1
		l.move(j, waiting)
	}
}

// settle ends a job in worker hands: acked, dead-lettered, or back to
// queued when its worker's connection closed unacked. It reports whether the
// job was flowlab's and in worker hands.
func (l *ledger) settle(id string, to jobState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.find(id)
	if !ok || j.state != working {
		return false
	}
	l.move(j, to)
	return true
}

// lose marks a job dropped: the broker refused its publish.
func (l *ledger) lose(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if j, ok := l.find(id); ok {
		l.move(j, dropped)
	}
}

func (l *ledger) move(j *entry, to jobState) {
	l.count[j.state]--
	j.state = to
	l.count[to]++
	if !to.settled() {
		l.open[j.id] = j
		return
	}
	delete(l.open, j.id)
	if _, ok := l.recentIdx[j.id]; ok {
		return
	}
	if len(l.recent) < recentJobs {
		l.recent = append(l.recent, j)
	} else {
		delete(l.recentIdx, l.recent[l.next].id)
		l.recent[l.next] = j
		l.next = (l.next + 1) % recentJobs
	}
	l.recentIdx[j.id] = j
}

func (l *ledger) find(id string) (*entry, bool) {
	if j, ok := l.open[id]; ok {
		return j, true
	}
	j, ok := l.recentIdx[id]
	return j, ok
}

// Job is the ledger's account of one email job.
type Job struct {
	ID         string
	State      string // queued, working, waiting to retry, acked, dead-lettered or dropped
	Attempt    int    // the attempt under way, or the last one made
	Deliveries int    // how often a worker received it, retries and redeliveries included
	Sent       int    // how often its email went out; above 1 are duplicates
}

func (l *ledger) job(id string) (Job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.find(id)
	if !ok {
		return Job{}, false
	}
	return Job{ID: j.id, State: j.state.String(), Attempt: j.attempt, Deliveries: j.deliveries, Sent: j.sent}, true
}

type ledgerSnapshot struct {
	published, retries, redelivered, duplicates int64
	count                                       [dropped + 1]int64
}

func (s ledgerSnapshot) inFlight() int64 {
	return s.count[queued] + s.count[working] + s.count[waiting]
}

func (l *ledger) snapshot() ledgerSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ledgerSnapshot{published: l.published, retries: l.retries, redelivered: l.redelivered, duplicates: l.duplicates, count: l.count}
}
