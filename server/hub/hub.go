// Package hub fans a scenario's flow events out to browsers over websockets.
//
// Emit only appends to a buffer, so a scenario never waits for a browser. Once
// per interval the buffer is encoded once into a frame that every client
// shares. Each client has a small bounded queue of frames; a client whose
// queue is full is marked behind and, when its writer is free again, gets a
// fresh snapshot instead of the frames it missed, so a slow screen catches up
// rather than going dark or slowing anyone else.
//
// Every message a hub sends carries the protocol version and the server time;
// frames and announcements also carry seq, their place in the hub's one
// stream, and a snapshot the seq of the last message it covers, so a client
// (or a recorder) sees seq rise by one from each snapshot on.
package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"flowlab/flow"
)

// Config says what a hub sends besides events.
type Config struct {
	// Snapshot is the first message a joining or lagging client gets: a
	// value that encodes as a JSON object, to which the hub adds v, seq and
	// time.
	Snapshot func() any
	// Stats goes into every frame, so counters stay exact even when the
	// events of a frame are sampled.
	Stats func() any
	// Interval between frames; 100 ms if zero.
	Interval time.Duration
	// QueueLen is how many frames a client may have waiting; 16 if zero.
	QueueLen int
	// MaxEvents per frame; beyond it whole messages are sampled. 400 if zero.
	MaxEvents int
	// Recent is how many past events a snapshot carries for the event log; 100 if zero.
	Recent int
	Log    *slog.Logger
}

// Hub is the fan-out point of one scenario in one lab.
type Hub struct {
	cfg Config

	mu      sync.Mutex
	pending []flow.Event
	lost    int          // events beyond the pending bound, reported as omitted
	recent  []flow.Event // a ring of the last events, for the log in a snapshot
	next    int
	clients map[*client]struct{}
	closed  bool // Run has ended: no client may join

	flushMu   sync.Mutex // one frame or announcement at a time, so they go out in seq order
	lastStats []byte
	seq       atomic.Uint64 // of the last frame or announcement; written under flushMu
}

// pendingMax bounds what waits between two frames, so a burst with no reader
// cannot grow memory without end.
const pendingMax = 50_000

// New returns a hub; call Run to start its frames.
func New(cfg Config) *Hub {
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 16
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 400
	}
	if cfg.Recent <= 0 {
		cfg.Recent = 100
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, clients: make(map[*client]struct{})}
}

var _ flow.Sink = (*Hub)(nil)

// Emit queues e for the next frame. It never blocks on a client.
func (h *Hub) Emit(e flow.Event) {
	h.mu.Lock()
	if len(h.recent) < h.cfg.Recent {
		h.recent = append(h.recent, e)
	} else {
		h.recent[h.next] = e
		h.next = (h.next + 1) % len(h.recent)
	}
	if len(h.clients) > 0 {
		if len(h.pending) < pendingMax {
			h.pending = append(h.pending, e)
		} else {
			h.lost++
		}
	}
	h.mu.Unlock()
}

// Recent returns a copy of the last events, oldest first, for a snapshot.
func (h *Hub) Recent() []flow.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]flow.Event, 0, len(h.recent))
	out = append(out, h.recent[h.next:]...)
	return append(out, h.recent[:h.next]...)
}

// ClearRecent empties the event log a snapshot carries, as when the
// scenario starts over.
func (h *Hub) ClearRecent() {
	h.mu.Lock()
	h.recent, h.next = h.recent[:0], 0
	h.mu.Unlock()
}

// Clients returns how many browsers are connected.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Run sends a frame every interval until ctx ends, then disconnects every
// client.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			h.closed = true
			for c := range h.clients {
				c.stop()
			}
			h.mu.Unlock()
			return
		case <-t.C:
			h.Flush()
		}
	}
}

// Reopen lets clients join again after Run has ended, before Run is called
// again: a scenario stopped for want of a browser keeps its hub.
func (h *Hub) Reopen() {
	h.mu.Lock()
	h.closed = false
	h.mu.Unlock()
}

// frame is the message that carries a batch of events.
type frame struct {
	V       int          `json:"v"`
	Seq     uint64       `json:"seq"`
	Time    int64        `json:"time"` // unix milliseconds
	Type    string       `json:"type"`
	Events  []flow.Event `json:"events"`
	Omitted int          `json:"omitted,omitempty"`
	// The stats, encoded already, go after the rest as "stats" (see Flush):
	// as a json.RawMessage here they would be checked and copied again.
	Stats json.RawMessage `json:"-"`
}

// Flush sends the pending events as one frame now; Run calls it every interval.
func (h *Hub) Flush() {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	if len(h.clients) == 0 {
		h.mu.Unlock()
		return
	}
	events, lost := h.pending, h.lost
	h.pending, h.lost = make([]flow.Event, 0, len(events)), 0
	h.mu.Unlock()

	f := frame{Type: "frame", Events: sample(events, h.cfg.MaxEvents)}
	if f.Events == nil {
		f.Events = []flow.Event{} // a list the page can iterate, never null
	}
	f.Omitted = len(events) - len(f.Events) + lost
	if h.cfg.Stats != nil {
		stats, err := json.Marshal(NoNulls(h.cfg.Stats()))
		if err != nil {
			h.cfg.Log.Error("encode stats", "err", err)
		} else if string(stats) != string(h.lastStats) {
			f.Stats, h.lastStats = stats, stats
		}
	}
	if len(f.Events) == 0 && f.Omitted == 0 && f.Stats == nil {
		return // nothing new: spare every client a frame
	}
	f.V, f.Seq, f.Time = Version, h.seq.Load()+1, time.Now().UnixMilli()
	// Events have no lists in them, so the frame goes to json as it is.
	msg, err := json.Marshal(f)
	if err != nil {
		h.cfg.Log.Error("encode frame", "err", err)
		return
	}
	if f.Stats != nil {
		msg = append(append(append(msg[:len(msg)-1], `,"stats":`...), f.Stats...), '}')
	}
	h.seq.Store(f.Seq)
	h.offer(queued{f.Seq, msg})
}

// offer queues m for every client.
func (h *Hub) offer(m queued) {
	h.mu.Lock()
	for c := range h.clients {
		c.offer(m)
	}
	h.mu.Unlock()
}

// Announce sends v, a JSON object, to every browser now, as a message of its
// own behind the frames already queued and numbered in the same stream:
// unlike a frame's events it is never sampled. A browser whose queue is full
// gets a snapshot instead, which holds it too.
func (h *Hub) Announce(v any) {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	seq := h.seq.Load() + 1
	msg, err := envelope(v, seq, time.Now())
	if err != nil {
		h.cfg.Log.Error("encode announcement", "err", err)
		return
	}
	h.seq.Store(seq)
	h.offer(queued{seq, msg})
}

// sample keeps every event when there are at most max, and otherwise every
// event without a message id (state changes), an outside client's (up to
// half the frame, so a learner's own record shows up even in a busy lab),
// and the whole of one message in k of the rest, so that what is drawn
// still shows complete journeys. k is a power of two and messages are
// picked by flow.DrawHash, as a sampling emitter picks them: a message the
// hub keeps is one the emitter passed on whole.
func sample(events []flow.Event, max int) []flow.Event {
	if len(events) <= max {
		return events
	}
	k := uint32(1)
	for int(k)*max < len(events) {
		k <<= 1
	}
	kept := make([]flow.Event, 0, max+max/4)
	outside := 0
	for _, e := range events {
		switch {
		case e.MsgID == "":
		case e.Detail.External && outside < max/2:
			outside++
		case flow.DrawHash(e.MsgID)&(k-1) != 0:
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// add registers c, unless the hub has stopped.
func (h *Hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	return true
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}
