package flow

import (
	"cmp"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLab is the lab that uses the article's names (ecommerce, orders),
// after "<instance>-" in a named instance.
const DefaultLab = "default"

var (
	labID    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	instance = regexp.MustCompile(`^[a-z0-9]{1,12}$`)
)

// Lab is one isolated copy of every scenario: a learner's sandbox in a
// classroom, or the default lab. Every broker name a scenario uses comes from
// Lab.Name so that labs never share an exchange, queue, topic or group.
type Lab struct {
	// ID names the lab in its pages' paths and its events: its id within
	// its flowlab, after "<instance>-" when that flowlab has an instance
	// name, so that a load balancer can route a lab by its path.
	ID     string
	local  string // the id within its flowlab
	prefix string // "<instance>-", or "" for a flowlab alone on its brokers
	seq    atomic.Uint64
	Traces *Traces
}

// How many recent hops a lab keeps for traces: minutes of a calm scenario,
// seconds of one at full load. A sandbox keeps a quarter, 40 s to 2 minutes
// of a pattern at 20 messages a second: its learner clicks log lines seconds
// old, and a hundred full rings of the default size would take a gigabyte.
const (
	LabTraceHops     = 1 << 15
	SandboxTraceHops = 1 << 13
)

// NewLab returns a lab of a flowlab alone on its brokers, or an Invalid
// error for an id that is not a short lower-case name.
func NewLab(id string) (*Lab, error) { return NewLabIn("", id) }

// NewLabIn returns lab id of instance inst, one of several flowlabs sharing
// the brokers; inst "" is a flowlab alone on them. It answers an Invalid
// error for an id NewLab refuses or an instance name CheckInstance refuses.
func NewLabIn(inst, id string) (*Lab, error) { return newLab(inst, id, LabTraceHops) }

// NewSandboxIn is NewLabIn for a learner's sandbox, whose traces keep
// SandboxTraceHops.
func NewSandboxIn(inst, id string) (*Lab, error) { return newLab(inst, id, SandboxTraceHops) }

func newLab(inst, id string, traceHops int) (*Lab, error) {
	if !labID.MatchString(id) {
		return nil, Errorf(Invalid, "lab id %q must be 1–32 lower-case letters, digits or dashes", id)
	}
	if err := CheckInstance(inst); err != nil {
		return nil, err
	}
	l := &Lab{ID: id, local: id, Traces: NewTraces(traceHops)}
	if inst != "" {
		l.prefix = inst + "-"
		l.ID = l.prefix + id
	}
	return l, nil
}

// CheckInstance refuses an instance name that is not "" or 1–12 lower-case
// letters and digits: characters every AMQP and Kafka name may hold, and no
// dash, so that "<instance>-" names exactly one instance, in a broker name as
// in a path a load balancer routes on.
func CheckInstance(inst string) error {
	if inst != "" && !instance.MatchString(inst) {
		return Errorf(Invalid, "instance name %q must be 1–12 lower-case letters or digits (no dash: a dash ends it in lab ids and broker names)", inst)
	}
	return nil
}

// Name derives a broker name from the article's base name: the default lab
// uses base itself, any other lab base.<id>; a lab of a named instance puts
// "<instance>-" first. No base has a dash before its first dot, so no name of
// an unnamed flowlab starts as a named instance's names do, and two
// instances' names never meet.
func (l *Lab) Name(base string) string {
	if l.local == DefaultLab {
		return l.prefix + base
	}
	return l.prefix + base + "." + l.local
}

// Emitter stamps a scenario's events with sequence, time, lab and scenario,
// keeps them in the lab's traces and hands them to the sink.
type Emitter struct {
	lab      *Lab
	scenario string
	sink     Sink
	sample   sampler
}

// NewEmitter returns the emitter a scenario in lab uses. It passes on every
// hop of every message until Sample is called.
func NewEmitter(lab *Lab, scenario string, sink Sink) *Emitter {
	return &Emitter{lab: lab, scenario: scenario, sink: sink}
}

// Sample has the emitter pass on about perSecond message hops a second
// (DrawRate for a browser's view): past it, the hops of one message in k, k
// a power of two that follows the rate. A message is judged by the k in
// force when it was born, so its journey is drawn whole or not at all.
// Hops of outside clients' messages and events without a message id always
// pass. Call it before the first Emit.
func (em *Emitter) Sample(perSecond int) *Emitter {
	em.sample.perSecond = perSecond
	return em
}

// Draws reports whether the hops of message id, born at born, are drawn,
// so that a scenario can skip building what would be dropped; it then
// emits them with EmitDrawn.
func (em *Emitter) Draws(id string, born time.Time) bool {
	return em.sample.drawn(DrawHash(id), born)
}

// DrawsBytes is Draws for an id still in bytes.
func (em *Emitter) DrawsBytes(id []byte, born time.Time) bool {
	return em.sample.drawn(drawHashBytes(id), born)
}

// Sampling is k: one message in k born now would be drawn.
func (em *Emitter) Sampling() int { return em.sample.current(time.Now()) }

// Emit stamps and forwards e, unless its message is not drawn (see Sample):
// a message hop is judged as a message born at e.Time. It never blocks on a
// browser: sinks must not.
func (em *Emitter) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.MsgID != "" && !e.Detail.External && !em.sample.drawn(DrawHash(e.MsgID), e.Time) {
		return
	}
	em.emit(e)
}

// EmitDrawn is Emit for a hop of a message Draws said is drawn: it is
// passed on whatever k is now.
func (em *Emitter) EmitDrawn(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	em.emit(e)
}

func (em *Emitter) emit(e Event) {
	e.Seq = em.lab.seq.Add(1)
	e.Lab = em.lab.ID
	e.Scenario = em.scenario
	em.lab.Traces.Add(&e)
	em.sink.Emit(e)
}

// Traces keeps the most recent hops so that a click in the view can show
// every hop of one message, even those the view did not animate. Adding is
// on every scenario's hot path and looking up happens on a click, so hops go
// into rings at the cost of one copy, and a look-up scans them all. A ring
// grows as hops come, up to its size, and then reuses its oldest places: a
// lab pays for the hops it has had, not for the hops it may have (a full
// ring is about 10 MiB a lab, and most sandboxes run one pattern, or none).
// The rings are shards taken in turn by sequence number, so that the
// producer and every consumer, even of one fanned-out message, add at once
// without queueing on one lock.
type Traces struct {
	shards [traceShards]traceRing
}

const traceShards = 8

type traceRing struct {
	mu   sync.Mutex
	ring []Event // the hops, up to size; once full, next is the oldest
	next int
	size int
	// Each ring's lock and position on cache lines of their own: adjacent
	// shards written by different goroutines would otherwise keep taking
	// the line from each other.
	_ [128 - 48]byte
}

// NewTraces keeps about the last size hops.
func NewTraces(size int) *Traces {
	t := &Traces{}
	for i := range t.shards {
		t.shards[i].size = max(1, size/traceShards)
	}
	return t
}

// Size is how many hops t keeps at most.
func (t *Traces) Size() int { return traceShards * t.shards[0].size }

// Add copies *e into a ring, once: an event is a few hundred bytes and
// every hop of every scenario comes through here. Events without a message
// id are not traced.
func (t *Traces) Add(e *Event) {
	if e.MsgID == "" {
		return
	}
	t.shards[e.Seq%traceShards].add(e)
}

func (r *traceRing) add(e *Event) {
	r.mu.Lock()
	if len(r.ring) < r.size {
		if len(r.ring) == cap(r.ring) {
			// Doubling, but never past size, as append's growth would.
			grown := make([]Event, len(r.ring), min(r.size, max(16, 2*cap(r.ring))))
			copy(grown, r.ring)
			r.ring = grown
		}
		r.ring = append(r.ring, *e)
		r.mu.Unlock()
		return
	}
	r.ring[r.next] = *e
	r.next++
	if r.next == len(r.ring) {
		r.next = 0
	}
	r.mu.Unlock()
}

// Clear forgets every hop of scenario's messages, as when it starts over.
func (t *Traces) Clear(scenario string) {
	for i := range t.shards {
		r := &t.shards[i]
		r.mu.Lock()
		for j := range r.ring {
			if r.ring[j].Scenario == scenario {
				r.ring[j] = Event{}
			}
		}
		r.mu.Unlock()
	}
}

// Get returns the hops of message id still kept, oldest first.
func (t *Traces) Get(id string) ([]Event, bool) {
	if id == "" {
		return nil, false // unused slots have no id either
	}
	var hops []Event
	for i := range t.shards {
		r := &t.shards[i]
		r.mu.Lock()
		for _, e := range r.ring {
			if e.MsgID == id {
				hops = append(hops, e)
			}
		}
		r.mu.Unlock()
	}
	slices.SortFunc(hops, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	return hops, len(hops) > 0
}
