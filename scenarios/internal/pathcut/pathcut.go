// Package pathcut puts a real TCP path between a scenario's sample services and
// a broker, so that a learner can cut it, restore it and slow it down while the
// broker itself keeps running for everyone else.
//
// flowlab's own clients dial through DialContext, which connects straight to
// the broker: with no fault set, their bytes cost nothing more than a direct
// connection. Anything else (a learner's own client, a URL) may dial Addr, an
// in-process proxy that forwards to the same kind of connection:
//
//	p, err := pathcut.New("kafka", "127.0.0.1:9092")
//	if err != nil { … }
//	defer p.Close()
//	conn, err := p.DialContext(ctx, "tcp") // or dial p.Addr()
//	p.Cut()                  // live connections close, new dials are refused
//	p.Restore()              // dials succeed again on the same address
//	p.Silence()              // connections stay open but carry nothing
//	p.Restore()              // silenced connections close; new ones work
//	p.SetLatency(300)        // every byte from the broker arrives 300 ms later
//	p.SetLatency(0)          // no added latency
//
// What clients see is what a real outage looks like. Cut closes their
// connections (reads say EOF, writes a broken pipe) and refuses new ones, so
// their own reconnect logic runs at once. Silence is the nastier outage, a
// pulled cable or a firewall dropping packets: nothing fails, nothing
// arrives, and clients notice only when a heartbeat or timeout of their own
// runs out. Addr stays the same for the life of the Path.
//
// A client that learns broker addresses from the broker itself (Kafka's
// metadata) would dial the advertised address and go around the path after
// its first connection. Send every dial through the path instead, e.g. with
// franz-go:
//
//	kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
//		return p.DialContext(ctx, network)
//	})
//
// (one Path per broker when there are several).
//
// A Path is safe for concurrent use.
package pathcut

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Path is one cuttable TCP path to an upstream address.
type Path struct {
	name     string
	upstream string
	addr     string // the proxy's 127.0.0.1:<port>, kept across cuts

	mu      sync.Mutex
	ln      net.Listener // nil while cut or closed
	conns   map[*conn]struct{}
	cut     bool
	silent  bool
	latency time.Duration
	closed  bool

	wg sync.WaitGroup // the proxy's goroutines and the delayed readers
}

// New starts a path named name (used only in errors) that listens on a free
// port of 127.0.0.1 and forwards every connection to upstream (host:port).
// Nothing is dialed until a client connects, so upstream may be down.
func New(name, upstream string) (*Path, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", name, err)
	}
	p := &Path{name: name, upstream: upstream, addr: ln.Addr().String(), ln: ln, conns: make(map[*conn]struct{})}
	p.serve(ln)
	return p, nil
}

// Addr is the host:port of the proxy, for clients that cannot be given
// DialContext.
func (p *Path) Addr() string { return p.addr }

// DialContext connects to the upstream through the path (network is "tcp"
// or a variant of it). While the path is cut it is refused as a dial to a
// closed port is; while it is silent the connection is made but carries
// nothing, as a black hole accepts and then says nothing.
func (p *Path) DialContext(ctx context.Context, network string) (net.Conn, error) {
	p.mu.Lock()
	closed, cut := p.closed, p.cut
	p.mu.Unlock()
	if closed || cut {
		return nil, p.refused()
	}
	var d net.Dialer
	sock, err := d.DialContext(ctx, network, p.upstream)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: sock, sock: sock.(*net.TCPConn), p: p}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cut { // cut while dialing
		sock.Close()
		return nil, p.refused()
	}
	c.lost = p.silent
	p.conns[c] = struct{}{}
	return c, nil
}

// refused is the error a dial to a closed port gives.
func (p *Path) refused() error {
	addr, _ := net.ResolveTCPAddr("tcp", p.addr)
	return &net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// serve accepts on ln until it closes, forwarding each connection through a
// connection of DialContext's.
func (p *Path) serve(ln net.Listener) {
	p.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(client) })
		}
	})
}

// forward copies both ways between client and the upstream until either
// side ends, then closes both.
func (p *Path) forward(client net.Conn) {
	defer client.Close()
	up, err := p.DialContext(context.Background(), "tcp")
	if err != nil {
		return // the client sees its connection closed, as with a dead upstream
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, client)
		up.Close()
		client.Close()
		close(done)
	}()
	io.Copy(client, up)
	up.Close()
	client.Close()
	<-done
}

// Cut closes every live connection through the path and refuses new ones
// until Restore. Cutting a cut path does nothing.
func (p *Path) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cut {
		return
	}
	p.cut = true
	p.ln.Close()
	p.ln = nil
	p.dropAll(func(*conn) bool { return true })
}

// dropAll closes the connections drop says to, as the path: their reads say
// EOF from then on. The caller holds p.mu.
func (p *Path) dropAll(drop func(*conn) bool) {
	for c := range p.conns {
		if drop(c) {
			c.dropped = true
			c.sock.Close()
			delete(p.conns, c)
		}
	}
}

// Silence lets no byte through either way while keeping every connection,
// old and new, open, until Restore. Silencing a silent path does nothing.
func (p *Path) Silence() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.name)
	}
	p.silent = true
	for c := range p.conns {
		c.lost = true
	}
	return nil
}

// Restore ends a cut or a silence: connections silenced are closed (their
// lost bytes are gone), and new ones carry data again on the same address.
// It fails only when that port was taken by someone else while the path was
// cut.
func (p *Path) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.name)
	}
	if p.silent {
		p.dropAll(func(c *conn) bool { return c.lost })
		p.silent = false
	}
	if p.cut {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("restore path %s: %w", p.name, err)
		}
		p.ln = ln
		p.serve(ln)
		p.cut = false
	}
	return nil
}

// IsCut reports whether the path is cut now.
func (p *Path) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// IsSilent reports whether the path is silenced now.
func (p *Path) IsSilent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.silent
}

// SetLatency delays everything the upstream sends by ms milliseconds, so a
// request/response round trip grows by ms; 0 removes the delay. It applies to
// live connections from their next read on and survives Cut and Restore.
func (p *Path) SetLatency(ms int) error {
	if ms < 0 {
		return fmt.Errorf("latency must be 0 or more milliseconds, not %d", ms)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.name)
	}
	p.latency = time.Duration(ms) * time.Millisecond
	if ms > 0 {
		// Reads waiting on a socket would get the next bytes undelayed:
		// wake them, so that they wait on a delayed reader instead.
		for c := range p.conns {
			if c.delayed == nil {
				c.poked = true
				c.sock.SetReadDeadline(time.Unix(1, 0))
			}
		}
	}
	return nil
}

// Latency is the delay SetLatency set, in milliseconds.
func (p *Path) Latency() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.latency / time.Millisecond)
}

// Close cuts the path for good, frees its port and waits for every
// goroutine it started.
func (p *Path) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.dropAll(func(*conn) bool { return true })
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// faults is what a connection must do to the bytes now: whether it was
// closed by the path, whether its bytes are lost, and how late what the
// upstream sent may be read.
func (p *Path) faults(c *conn) (dropped, lost bool, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.dropped, c.lost, p.latency
}

// conn is a client's connection to the upstream through the path. With no
// fault set its reads and writes are the socket's own: no copy, no
// goroutine. Once a latency was set while it was open, a reader of the
// path's reads the socket and conn hands out each piece when it is due.
type conn struct {
	net.Conn // the socket's addresses
	sock     *net.TCPConn
	p        *Path

	// Under p.mu:
	lost     bool      // open while the path was silent: its bytes are dropped, Restore closes it
	dropped  bool      // closed by the path, not by its user
	deadline time.Time // the user's read deadline
	poked    bool      // its socket's read deadline was moved to wake a Read
	delayed  *delayed  // nil until a latency was set while the connection was open

	rmu sync.Mutex // one Read at a time, so that only one goroutine reads sock
}

func (c *conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		dropped, _, latency := c.p.faults(c)
		if dropped {
			return 0, io.EOF
		}
		if latency > 0 {
			c.startDelayed(nil)
		}
		var n int
		var err error
		if d := c.delayedReader(); d != nil {
			n, err = d.read(b, c.p)
		} else {
			n, err = c.sock.Read(b)
			if c.unpoke() {
				// SetLatency moved the deadline to wake this read; bytes
				// that came first (the wake-up can lose that race) are
				// delayed like any that follow.
				if n > 0 {
					c.startDelayed(b[:n])
				}
				if n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
			}
		}
		dropped, lost, _ := c.p.faults(c)
		switch {
		case dropped:
			return 0, io.EOF // the path closed it: to the client, the peer did
		case err != nil:
			return n, err
		case !lost:
			return n, nil
		}
		// A silent path loses what arrives and keeps the reader waiting.
	}
}

func (c *conn) Write(b []byte) (int, error) {
	if _, lost, _ := c.p.faults(c); lost {
		return len(b), nil // into the black hole
	}
	n, err := c.sock.Write(b)
	if dropped, _, _ := c.p.faults(c); err != nil && dropped {
		err = &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", syscall.EPIPE)}
	}
	return n, err
}

func (c *conn) Close() error {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return c.sock.Close()
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.sock.SetWriteDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.p.mu.Lock()
	c.deadline = t
	d, poked := c.delayed, c.poked
	c.p.mu.Unlock()
	switch {
	case d != nil:
		d.setDeadline(t)
		return nil
	case poked:
		return nil // the woken Read gives the socket this deadline or the delayed reader takes it
	}
	return c.sock.SetReadDeadline(t)
}

// unpoke reports whether SetLatency tried to wake the Read on the socket,
// and gives the socket the user's deadline back if no latency is set any
// more.
func (c *conn) unpoke() bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if !c.poked {
		return false
	}
	c.poked = false
	if c.p.latency == 0 {
		c.sock.SetReadDeadline(c.deadline)
	}
	return true
}

// delayedReader is c.delayed, read while another goroutine may set it.
func (c *conn) delayedReader() *delayed {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.delayed
}

// startDelayed hands the socket to a reader that stamps what arrives, so
// that each byte is read latency after it arrived, beginning with first,
// which just did; the user's read deadline moves to the delayed reads. The
// caller holds c.rmu, so no Read is on the socket. A connection stays
// delayed for its life, since the reader may be holding bytes when the
// latency goes back to 0.
func (c *conn) startDelayed(first []byte) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.delayed != nil || c.dropped || c.p.closed {
		return
	}
	d := &delayed{deadline: c.deadline, wake: make(chan struct{}, 1)}
	if len(first) > 0 {
		d.pieces = []piece{{append([]byte(nil), first...), time.Now()}}
	}
	c.delayed = d
	c.sock.SetReadDeadline(time.Time{})
	c.p.wg.Go(func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.sock.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A SetReadDeadline that raced startDelayed reached the socket.
				c.sock.SetReadDeadline(time.Time{})
				err = nil
			}
			d.push(buf[:n], time.Now(), err)
			if err != nil {
				return
			}
		}
	})
}

// delayed holds what the socket sent, each piece with when it arrived.
type delayed struct {
	mu       sync.Mutex
	pieces   []piece
	err      error // the socket's, after the pieces
	deadline time.Time
	wake     chan struct{} // something arrived or the deadline moved
}

type piece struct {
	data []byte
	at   time.Time
}

func (d *delayed) push(b []byte, at time.Time, err error) {
	d.mu.Lock()
	if len(b) > 0 {
		d.pieces = append(d.pieces, piece{append([]byte(nil), b...), at})
	}
	if err != nil {
		d.err = err
	}
	d.mu.Unlock()
	d.signal()
}

func (d *delayed) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *delayed) setDeadline(t time.Time) {
	d.mu.Lock()
	d.deadline = t
	d.mu.Unlock()
	d.signal()
}

// read waits for the first piece to be due (its arrival plus the path's
// latency now) and copies what fits into b.
func (d *delayed) read(b []byte, p *Path) (int, error) {
	for {
		p.mu.Lock()
		latency := p.latency
		p.mu.Unlock()
		d.mu.Lock()
		now := time.Now()
		if !d.deadline.IsZero() && !now.Before(d.deadline) {
			d.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		wait := time.Duration(-1) // until woken
		if len(d.pieces) > 0 {
			first := &d.pieces[0]
			due := first.at.Add(latency)
			if !now.Before(due) {
				n := copy(b, first.data)
				if first.data = first.data[n:]; len(first.data) == 0 {
					d.pieces = d.pieces[1:]
				}
				d.mu.Unlock()
				return n, nil
			}
			wait = due.Sub(now)
		} else if d.err != nil {
			err := d.err
			d.mu.Unlock()
			return 0, err
		}
		if !d.deadline.IsZero() && (wait < 0 || d.deadline.Sub(now) < wait) {
			wait = d.deadline.Sub(now)
		}
		d.mu.Unlock()
		if wait < 0 {
			<-d.wake
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}
}
