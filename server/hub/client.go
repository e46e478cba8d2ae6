package hub

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Timing and size limits of a browser connection.
const (
	writeWait  = 10 * time.Second  // a write that takes longer means the client is gone
	pongWait   = 60 * time.Second  // a client silent for this long is gone
	pingPeriod = pongWait * 9 / 10 // ping before the peer's read deadline passes
	CommandMax = 4 << 10           // a larger command gets an error reply
	readLimit  = 64 << 10          // a larger frame closes the connection (1009)

	// A connection may send a burst of commands, then this many a second;
	// past that a command is refused, so one page cannot flood a lab.
	commandBurst = 20
	commandRate  = 10
)

// Handler answers one command message from a browser with one reply message.
type Handler func(msg []byte) any

// client is one browser connection: a reader goroutine (Serve itself) and a
// writer goroutine, as in gorilla's chat example.
type client struct {
	send    chan queued
	replies chan []byte
	behind  atomic.Bool // its queue overflowed: send a snapshot next
	done    chan struct{}
	once    sync.Once
}

func (c *client) stop() { c.once.Do(func() { close(c.done) }) }

// queued is a frame or an announcement and its place in the hub's stream.
type queued struct {
	seq uint64
	msg []byte
}

// offer queues a frame without ever blocking; a full queue marks the client
// behind instead.
func (c *client) offer(m queued) {
	select {
	case c.send <- m:
	default:
		c.behind.Store(true)
	}
}

// Serve runs one browser connection until it closes or the hub stops: first a
// snapshot, then frames; every text message it sends is answered by handle.
func (h *Hub) Serve(conn *websocket.Conn, handle Handler) {
	c := &client{
		send:    make(chan queued, h.cfg.QueueLen),
		replies: make(chan []byte, 4),
		done:    make(chan struct{}),
	}
	c.behind.Store(true) // the first thing it gets is a snapshot
	if !h.add(c) {
		conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "flowlab is shutting down"),
			time.Now().Add(time.Second))
		conn.Close()
		return
	}
	defer h.remove(c)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.write(conn, c)
	}()
	h.read(conn, c, handle)
	c.stop()
	conn.Close()
	wg.Wait()
}

func (h *Hub) read(conn *websocket.Conn, c *client, handle Handler) {
	conn.SetReadLimit(readLimit)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	limit := rate.NewLimiter(commandRate, commandBurst)
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var reply any
		switch {
		case !limit.Allow():
			reply = refusal(msg, fmt.Sprintf("too many commands: at most %d at once, then %d a second; this one was not carried out", commandBurst, commandRate))
		case typ != websocket.TextMessage:
			reply = refusal(msg, "a command is JSON text: send it in a text frame, not a binary one")
		case len(msg) > CommandMax:
			reply = refusal(msg, "command too large: at most 4 KiB")
		default:
			reply = handle(msg)
		}
		b, err := envelope(reply, noSeq, time.Now())
		if err != nil {
			h.cfg.Log.Error("encode reply", "err", err)
			return
		}
		select {
		case c.replies <- b: // blocking here stalls only this client's own reader
		case <-c.done:
			return
		}
	}
}

// refusal is the error reply to a command the handler never sees. It carries
// the command's id, if one can be read, so the page can match it.
func refusal(msg []byte, why string) map[string]any {
	var head struct {
		ID int `json:"id"`
	}
	json.Unmarshal(msg, &head)
	return map[string]any{"type": "reply", "id": head.ID, "ok": false, "kind": "invalid", "error": why}
}

func (h *Hub) write(conn *websocket.Conn, c *client) {
	ping := time.NewTicker(pingPeriod)
	defer func() {
		ping.Stop()
		c.stop()     // unblocks a reader waiting to queue a reply
		conn.Close() // unblocks a reader waiting for a message
	}()
	var covered uint64 // the seq of the last snapshot sent: what it holds already
	for {
		if c.behind.Swap(false) {
			drain(c.send)
			var ok bool
			if covered, ok = h.writeSnapshot(conn); !ok {
				return
			}
		}
		select {
		case <-c.done:
			conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "flowlab is shutting down"),
				time.Now().Add(time.Second))
			return
		case m := <-c.send:
			if c.behind.Load() || m.seq <= covered {
				continue // stale: a snapshot supersedes it
			}
			if !writeText(conn, m.msg) {
				return
			}
		case msg := <-c.replies:
			if !writeText(conn, msg) {
				return
			}
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if conn.WriteMessage(websocket.PingMessage, nil) != nil {
				return
			}
		}
	}
}

// writeSnapshot sends a snapshot and returns the seq it covers. That seq is
// read before the snapshot is made, so whatever a message up to it carried,
// the snapshot holds too.
func (h *Hub) writeSnapshot(conn *websocket.Conn) (uint64, bool) {
	seq := h.seq.Load()
	var snap any = map[string]string{"type": "snapshot"}
	if h.cfg.Snapshot != nil {
		snap = h.cfg.Snapshot()
	}
	msg, err := envelope(snap, seq, time.Now())
	if err != nil {
		h.cfg.Log.Error("encode snapshot", "err", err)
		return 0, false
	}
	return seq, writeText(conn, msg)
}

func writeText(conn *websocket.Conn, msg []byte) bool {
	conn.SetWriteDeadline(time.Now().Add(writeWait))
	return conn.WriteMessage(websocket.TextMessage, msg) == nil
}

func drain(ch chan queued) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
