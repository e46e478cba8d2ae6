package compare

import (
	"slices"
	"sync"
	"time"
)

// An order's marks in a column's books.
const (
	markAccepted uint8 = 1 << iota // order-service told its caller yes
	markFailed                     // order-service told its caller no
	markReserved                   // inventory reserved its stock
	markEmailed                    // email sent its confirmation
	markLost                       // accepted, and inventory or email can never get it
)

// books is one column's exact account of every order placed in it: what its
// caller was told, what inventory and email did, what can never happen. Every
// count the scorecard shows is kept here, under one lock, so the ledger
// always balances.
type books struct {
	mu         sync.Mutex
	marks      []uint8 // by order number
	accepted   int64
	failed     int64
	fulfilled  int64 // stock reserved and email sent
	lost       int64 // accepted orders that will never be fulfilled
	reserved   int64
	emailed    int64
	dupReserve int64 // stock reserved again for an order that had it
	dupEmail   int64 // a confirmation sent again

	lat []callTime // the caller's latencies, newest last, for the p99

	// The last full second's counts, for the swimlanes.
	secStart                        time.Time
	secAccepted, secFull, secFailed int64
	lastAccepted, lastFulfilled     int64
	lastFailed                      int64
}

type callTime struct {
	at time.Time
	ms float64
}

// p99Window is how far back the caller's p99 looks.
const p99Window = 10 * time.Second

func newBooks() *books { return &books{secStart: time.Now()} }

// place opens the next order and returns its number.
func (b *books) place() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.marks = append(b.marks, 0)
	return int64(len(b.marks) - 1)
}

// answered records what order-service told the caller of order n, and how
// long the caller waited.
func (b *books) answered(n int64, ok bool, took time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.marks[n] |= markAccepted
		b.accepted++
		b.secAccepted++
		b.settle(n)
	} else {
		b.marks[n] |= markFailed
		b.failed++
		b.secFailed++
	}
	now := time.Now()
	b.lat = append(b.lat, callTime{now, float64(took.Microseconds()) / 1000})
	b.trim(now)
}

// did records inventory's reservation (mark markReserved) or email's
// confirmation (markEmailed) of order n, and reports whether it had been
// done before: a duplicate side effect.
func (b *books) did(n int64, mark uint8) (dup bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || n >= int64(len(b.marks)) {
		return false
	}
	if b.marks[n]&mark != 0 {
		if mark == markReserved {
			b.dupReserve++
		} else {
			b.dupEmail++
		}
		return true
	}
	b.marks[n] |= mark
	if mark == markReserved {
		b.reserved++
	} else {
		b.emailed++
	}
	b.settle(n)
	return false
}

// settle counts order n fulfilled once it is accepted, reserved and emailed.
func (b *books) settle(n int64) {
	const full = markAccepted | markReserved | markEmailed
	if m := b.marks[n]; m&full == full && m&markLost == 0 {
		b.fulfilled++
		b.secFull++
	}
}

// loseUndone marks lost every accepted order that has not had mark done:
// called when a service's queue is made anew, so that what was accepted
// before it can never reach it. It returns how many it marked.
func (b *books) loseUndone(mark uint8) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for i, m := range b.marks {
		if m&markAccepted != 0 && m&mark == 0 && m&markLost == 0 {
			b.marks[i] |= markLost
			b.lost++
			n++
		}
	}
	return n
}

// loseSkipped marks lost every accepted order below n, from *from on,
// that has not had mark done, and moves *from past n. It serves a queue that
// one publisher fills in order and delivers in order, with no redelivery
// (auto-ack): once order n arrives, an earlier one that did not was never
// routed to the queue, and never will be.
func (b *books) loseSkipped(n int64, mark uint8, from *int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := *from; i < n && i < int64(len(b.marks)); i++ {
		if m := b.marks[i]; m&markAccepted != 0 && m&mark == 0 && m&markLost == 0 {
			b.marks[i] |= markLost
			b.lost++
		}
	}
	*from = max(*from, n+1)
}

// loseOne marks order n lost when it is accepted and mark was never done:
// its message was consumed for good without the work being done.
func (b *books) loseOne(n int64, mark uint8) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || n >= int64(len(b.marks)) {
		return
	}
	if m := b.marks[n]; m&markAccepted != 0 && m&mark == 0 && m&markLost == 0 {
		b.marks[n] |= markLost
		b.lost++
	}
}

// trim forgets latencies older than the p99 window.
func (b *books) trim(now time.Time) {
	i := 0
	for i < len(b.lat) && now.Sub(b.lat[i].at) > p99Window {
		i++
	}
	b.lat = b.lat[i:]
}

// tick closes the current second for the swimlanes when it is over.
func (b *books) tick(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.secStart) < time.Second {
		return
	}
	b.lastAccepted, b.lastFulfilled, b.lastFailed = b.secAccepted, b.secFull, b.secFailed
	b.secAccepted, b.secFull, b.secFailed = 0, 0, 0
	b.secStart = now
	b.trim(now)
}

// tally is a copy of the books' counts.
type tally struct {
	placed, accepted, failed, fulfilled, lost int64
	reserved, emailed, dupReserve, dupEmail   int64
	acceptedPerS, fulfilledPerS, failedPerS   int64
	p99MS                                     float64
}

// waiting is accepted orders neither fulfilled nor lost yet: the backlog.
func (t tally) waiting() int64 { return t.accepted - t.fulfilled - t.lost }

// calling is orders whose caller is still waiting for an answer.
func (t tally) calling() int64 { return t.placed - t.accepted - t.failed }

func (t tally) duplicates() int64 { return t.dupReserve + t.dupEmail }

func (b *books) tally() tally {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := tally{
		placed: int64(len(b.marks)), accepted: b.accepted, failed: b.failed,
		fulfilled: b.fulfilled, lost: b.lost, reserved: b.reserved, emailed: b.emailed,
		dupReserve: b.dupReserve, dupEmail: b.dupEmail,
		acceptedPerS: b.lastAccepted, fulfilledPerS: b.lastFulfilled, failedPerS: b.lastFailed,
	}
	if len(b.lat) > 0 {
		ms := make([]float64, len(b.lat))
		for i, c := range b.lat {
			ms[i] = c.ms
		}
		slices.Sort(ms)
		t.p99MS = ms[(len(ms)*99+99)/100-1]
	}
	return t
}
