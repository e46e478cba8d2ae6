package flow

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DrawRate is about how many message hops a second a sampled emitter
// passes on: what a view draws (a frame of 400 events every 100 ms). Past it
// an emitter passes whole messages, one in k, so that the hops which reach a
// browser are whole journeys and nothing is built, stored or sent for a hop
// no browser will draw. A scenario's counters and ledger are kept apart and
// stay exact. The rate is counted in judgements (a message is judged at
// each hop that asks), which is about one per hop.
const DrawRate = 4000

// drawSeed makes DrawHash the same function everywhere in the process: the
// emitter's choice and the hub's nest.
var drawSeed = maphash.MakeSeed()

// DrawHash is the hash that picks which messages are drawn when there are
// too many: those whose hash is 0 modulo k, for k a power of two, so a
// message drawn one in 2k is drawn one in k too.
func DrawHash(id string) uint32 { return uint32(maphash.String(drawSeed, id)) }

func drawHashBytes(id []byte) uint32 { return uint32(maphash.Bytes(drawSeed, id)) }

const (
	// sampleWindow is how often a sampler looks again at the rate it is
	// offered; a window ends early in a flood.
	sampleWindow = 100 * time.Millisecond
	maxSampling  = 1 << 20
	// probeMask picks the messages a sampler counts to know its rate: one
	// in 64 by hash, whatever k is, so counting costs a lock only that
	// often.
	probeMask = 63
	// sampleHistory is how many changes of k a sampler remembers, so that
	// a message is judged by the k of the moment it was born even when k
	// changed since: a journey is drawn whole or not at all.
	sampleHistory = 256
	// journeyMax is how old a message may be and still be judged by the k
	// of its birth.
	journeyMax = 10 * time.Second
	// epochDelay is how long after it is chosen a new k comes into force:
	// far longer than storing it takes.
	epochDelay = time.Millisecond
)

// sampler picks the messages an emitter passes on. A message is judged by
// the k in force when it was born, and k follows the rate at which the
// emitter judges messages. Judging costs a hash and an atomic load (and a
// short look back when k changed since the message was born); one judgement
// in 64 is counted under a lock.
type sampler struct {
	perSecond int                   // 0: pass every message
	latest    atomic.Pointer[epoch] // the newest k, and when it comes into force
	// deadline is when the current window ends, in unix nanoseconds: a
	// message judged after it looks at the rate again even if it is not
	// counted, so that k comes down soon after a flood.
	deadline atomic.Int64

	mu      sync.Mutex
	start   time.Time // of the current window
	probes  int       // messages counted in it
	history [sampleHistory]epoch
	changes int // how many changes history has seen
}

// epoch is a k and the moment it came into force.
type epoch struct {
	since int64 // unix nanoseconds
	mask  uint32
}

// drawn reports whether the message with hash h, born at born, is drawn.
func (s *sampler) drawn(h uint32, born time.Time) bool {
	if s.perSecond == 0 {
		return true
	}
	t := born.UnixNano()
	drawn := h&s.maskAt(t) == 0
	if probe := h&probeMask == 0; probe || t > s.deadline.Load() {
		s.judged(probe)
	}
	return drawn
}

// quartered is k after a quarter off for every window of a quiet spell of
// length d (one at least), so a lab quiet for a second draws everything.
func quartered(k uint32, d time.Duration) uint32 {
	shift := 2 * max(1, d/sampleWindow)
	if shift >= 32 {
		return 1
	}
	return max(1, k>>shift)
}

// current is the k a message born at now would be judged by: the k in
// force, or less after a quiet spell, which the next message will find.
func (s *sampler) current(now time.Time) int {
	k := s.mask() + 1
	if quiet := now.UnixNano() - s.deadline.Load(); quiet > 0 && k > 1 {
		k = quartered(k, time.Duration(quiet))
	}
	return int(k)
}

// mask is k-1 for the newest k, in force from a millisecond after it was
// chosen.
func (s *sampler) mask() uint32 {
	if e := s.latest.Load(); e != nil {
		return e.mask
	}
	return 0
}

// maskAt is k-1 for the k in force at t, in unix nanoseconds. A message
// born well before k last changed (a replay, or one that waited out an
// outage) is judged by the k in force, as a new one: what its first hops
// were is long off the page.
func (s *sampler) maskAt(t int64) uint32 {
	e := s.latest.Load()
	if e == nil {
		return 0
	}
	if t < e.since-int64(journeyMax) {
		t = time.Now().UnixNano() // judged as if born now
	}
	if t >= e.since {
		return e.mask
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= min(s.changes, sampleHistory); i++ {
		if old := s.history[(s.changes-i)%sampleHistory]; t >= old.since {
			return old.mask
		}
	}
	return 0 // before every change remembered: when k was still one
}

// judged counts a judgement, a probe or one past the window's end, and
// adapts k when the window is over: up at once for a flood, down a quarter
// at a time and only when well below, so that k does not swing with the
// luck of one window. It keeps time by the clock, not by the births it is
// shown, so that a new k comes into force after every message judged so far
// was born: those keep their answer.
func (s *sampler) judged(probe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if probe {
		s.probes++
	}
	elapsed := now.Sub(s.start)
	k := s.mask() + 1
	// A flood: twice what k can take, already within this window.
	flood := s.probes*(probeMask+1) >= 2*int(k)*s.perSecond*int(sampleWindow)/int(time.Second)
	if elapsed < sampleWindow && !flood {
		return
	}
	offered := float64(s.probes*(probeMask+1)) / max(elapsed.Seconds(), 0.001)
	want := uint32(1)
	for float64(want)*float64(s.perSecond) < offered && want < maxSampling {
		want <<= 1
	}
	next := k
	switch {
	case elapsed >= 2*sampleWindow:
		// Nothing came to close the window when it ended: a quiet spell,
		// after which the rate starts again from the bottom.
		next = quartered(k, elapsed-sampleWindow)
	case want > k:
		next = want
	case offered*3 < float64(k)*float64(s.perSecond):
		next = max(want, quartered(k, elapsed))
	}
	s.start, s.probes = now, 0
	s.deadline.Store(now.Add(sampleWindow).UnixNano())
	if next == k && s.changes > 0 {
		return
	}
	// In force from a little later: whatever is born from then on is
	// judged after this store, and whatever was judged before it was born
	// earlier, so no message gets two answers.
	e := epoch{since: now.Add(epochDelay).UnixNano(), mask: next - 1}
	s.history[s.changes%sampleHistory] = e
	s.changes++
	s.latest.Store(&e)
}
