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
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
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

	flushMu   sync.Mutex    // one frame or announcement at a time, so they go out in seq order; guards what follows
	spare     []flow.Event  // the last frame's pending, emptied: the next frame's
	lastStats []byte        // as the last frame that had stats carried them
	statsBuf  []byte        // where the next stats are encoded
	lastLen   int           // of the last frame without its stats
	seq       atomic.Uint64 // of the last frame or announcement; written under flushMu
}

// pendingMax bounds what waits between two frames, so a burst with no reader
// cannot grow memory without end.
const pendingMax = 50_000

// spareMax bounds the list of events a hub keeps between frames for reuse,
// so that one burst does not hold its memory for good.
const spareMax = 1024

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

// Flush sends the pending events as one frame now; Run calls it every interval.
// The frame is {v, seq, time, type, events, omitted?, stats?}: stats only
// when they changed since the last frame, events [] when there are none.
func (h *Hub) Flush() {
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	h.mu.Lock()
	if len(h.clients) == 0 {
		h.mu.Unlock()
		return
	}
	events, lost := h.pending, h.lost
	h.pending, h.lost = h.spare[:0], 0
	h.mu.Unlock()
	// The events' slice comes back for the frame after next (Emit appends
	// to the other one meanwhile), unless a burst made it large.
	defer func() {
		if cap(events) <= spareMax {
			clear(events) // the events' strings are not kept alive by it
			h.spare = events[:0]
		} else {
			h.spare = nil
		}
	}()

	kept := sample(events, h.cfg.MaxEvents)
	omitted := len(events) - len(kept) + lost
	stats := h.changedStats()
	if len(kept) == 0 && omitted == 0 && stats == nil {
		return // nothing new: spare every client a frame
	}
	seq := h.seq.Load() + 1
	// A new buffer, as clients hold on to it; as large as the last one.
	msg := make([]byte, 0, max(h.lastLen, 256)+len(stats))
	msg = append(msg, `{"v":`...)
	msg = strconv.AppendInt(msg, Version, 10)
	msg = append(msg, `,"seq":`...)
	msg = strconv.AppendUint(msg, seq, 10)
	msg = append(msg, `,"time":`...)
	msg = strconv.AppendInt(msg, time.Now().UnixMilli(), 10)
	msg = append(msg, `,"type":"frame","events":[`...)
	for i := range kept {
		if i > 0 {
			msg = append(msg, ',')
		}
		var err error
		if msg, err = appendEvent(msg, &kept[i]); err != nil {
			h.cfg.Log.Error("encode frame", "err", err)
			return
		}
	}
	msg = append(msg, ']')
	if omitted != 0 {
		msg = append(msg, `,"omitted":`...)
		msg = strconv.AppendInt(msg, int64(omitted), 10)
	}
	if stats != nil {
		msg = append(append(msg, `,"stats":`...), stats...)
	}
	msg = append(msg, '}')
	h.lastLen = len(msg) - len(stats)
	h.seq.Store(seq)
	h.offer(queued{seq, msg})
}

// changedStats returns the stats encoded, or nil when they are what the
// last frame carried (or cannot be encoded). They are encoded into a buffer
// kept from frame to frame: most frames of a watched scenario carry stats,
// and each one used to cost a buffer or two of their size.
func (h *Hub) changedStats() []byte {
	if h.cfg.Stats == nil {
		return nil
	}
	var b []byte
	var err error
	switch v := h.cfg.Stats().(type) {
	case Appender:
		b, err = v.AppendJSON(h.statsBuf[:0])
		h.statsBuf = b[:0]
	default:
		b, err = json.Marshal(NoNulls(v))
	}
	if err != nil {
		h.cfg.Log.Error("encode stats", "err", err)
		return nil
	}
	if bytes.Equal(b, h.lastStats) {
		return nil
	}
	// The two buffers change places: b is the last stats now.
	h.lastStats, h.statsBuf = b, h.lastStats[:0]
	return b
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
