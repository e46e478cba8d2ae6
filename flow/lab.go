package flow

import (
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLab is the lab that uses the article's names (ecommerce, orders).
const DefaultLab = "default"

var labID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Lab is one isolated copy of every scenario: a learner's sandbox in a
// classroom, or the default lab. Every broker name a scenario uses comes from
// Lab.Name so that labs never share an exchange, queue, topic or group.
type Lab struct {
	ID     string
	seq    atomic.Uint64
	Traces *Traces
}

// NewLab returns a lab, or an Invalid error for an id that is not a short
// lower-case name.
func NewLab(id string) (*Lab, error) {
	if !labID.MatchString(id) {
		return nil, Errorf(Invalid, "lab id %q must be 1–32 lower-case letters, digits or dashes", id)
	}
	return &Lab{ID: id, Traces: NewTraces(4096)}, nil
}

// Name derives a broker name from the article's base name: the default lab
// uses base itself, any other lab base.<id>.
func (l *Lab) Name(base string) string {
	if l.ID == DefaultLab {
		return base
	}
	return base + "." + l.ID
}

// Emitter stamps a scenario's events with sequence, time, lab and scenario,
// keeps them in the lab's traces and hands them to the sink.
type Emitter struct {
	lab      *Lab
	scenario string
	sink     Sink
}

// NewEmitter returns the emitter a scenario in lab uses.
func NewEmitter(lab *Lab, scenario string, sink Sink) *Emitter {
	return &Emitter{lab: lab, scenario: scenario, sink: sink}
}

// Emit stamps and forwards e. It never blocks on a browser: sinks must not.
func (em *Emitter) Emit(e Event) {
	e.Seq = em.lab.seq.Add(1)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Lab = em.lab.ID
	e.Scenario = em.scenario
	em.lab.Traces.Add(e)
	em.sink.Emit(e)
}

// Traces keeps the hops of the most recent messages so that a click in the
// view can show every hop of one, even those the view did not animate.
type Traces struct {
	mu    sync.Mutex
	max   int
	order []string // message ids, oldest first, as a ring
	next  int
	hops  map[string][]Event
}

// maxHops bounds one message's trace: a poison message requeued forever must
// not grow without end.
const maxHops = 200

// NewTraces keeps the traces of the last max messages.
func NewTraces(max int) *Traces {
	return &Traces{max: max, order: make([]string, 0, max), hops: make(map[string][]Event, max)}
}

// Add records e under its message id; events without one are not traced.
func (t *Traces) Add(e Event) {
	if e.MsgID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.hops[e.MsgID]; ok {
		if len(h) < maxHops {
			t.hops[e.MsgID] = append(h, e)
		}
		return
	}
	if len(t.order) < t.max {
		t.order = append(t.order, e.MsgID)
	} else {
		delete(t.hops, t.order[t.next])
		t.order[t.next] = e.MsgID
		t.next = (t.next + 1) % t.max
	}
	t.hops[e.MsgID] = []Event{e}
}

// Get returns a copy of the hops of message id, oldest first.
func (t *Traces) Get(id string) ([]Event, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.hops[id]
	return append([]Event(nil), h...), ok
}
