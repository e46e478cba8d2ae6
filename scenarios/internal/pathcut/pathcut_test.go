package pathcut_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"flowlab/scenarios/internal/pathcut"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPathForwardsCutsRestoresAndDelays(t *testing.T) {
	echo := startEcho(t)
	p, err := pathcut.New("echo", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	conn := dial(t, p.Addr())
	if got := roundTrip(t, conn, "hello"); got != "hello" {
		t.Fatalf("echo through the path: got %q", got)
	}

	p.Cut()
	if !p.IsCut() {
		t.Fatal("IsCut after Cut: false")
	}
	// The live connection must fail as a real outage does, not hang.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read on a cut connection: want closed, got %v", err)
	}
	conn.Close()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("dial while cut succeeded")
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if p.IsCut() {
		t.Fatal("IsCut after Restore: true")
	}
	conn = dial(t, p.Addr())
	defer conn.Close()
	if got := roundTrip(t, conn, "again"); got != "again" {
		t.Fatalf("echo after restore: got %q", got)
	}

	if err := p.SetLatency(200); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	roundTrip(t, conn, "slow")
	if d := time.Since(start); d < 190*time.Millisecond || d > time.Second {
		t.Fatalf("round trip with 200 ms latency took %v", d)
	}
	if p.Latency() != 200 {
		t.Fatalf("Latency() = %d", p.Latency())
	}
	if err := p.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	roundTrip(t, conn, "fast")
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("round trip after removing latency took %v", d)
	}
	if err := p.SetLatency(-1); err == nil {
		t.Fatal("negative latency accepted")
	}
}

func TestSilencedPathCarriesNothingAndClosesNothing(t *testing.T) {
	p, err := pathcut.New("silent", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	old := dial(t, p.Addr())
	defer old.Close()
	roundTrip(t, old, "before")

	if err := p.Silence(); err != nil {
		t.Fatal(err)
	}
	if !p.IsSilent() || p.IsCut() {
		t.Fatalf("after Silence: silent %v, cut %v", p.IsSilent(), p.IsCut())
	}
	fresh := dial(t, p.Addr()) // accepted, as a black hole does
	defer fresh.Close()
	for _, c := range []net.Conn{old, fresh} {
		io.WriteString(c, "lost\n")
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read through a silent path: want a timeout (nothing arrives, nothing closes), got %v", err)
		}
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a silenced connection after Restore: want closed, got %v", err)
	}
	c := dial(t, p.Addr())
	defer c.Close()
	if got := roundTrip(t, c, "after"); got != "after" {
		t.Fatalf("echo after the silence: %q", got)
	}
}

func TestPathToAbsentUpstreamRefusesAfterAccept(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	absent := l.Addr().String()
	l.Close()

	p, err := pathcut.New("absent", absent)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	conn := dial(t, p.Addr())
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read through a path to nothing: want closed, got %v", err)
	}
}

func TestClosedPathRefuses(t *testing.T) {
	p, err := pathcut.New("closed", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.Restore(); err == nil {
		t.Fatal("Restore after Close succeeded")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded")
	}
}

// startEcho runs a TCP server that writes back every line it reads.
func startEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roundTrip(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return got[:len(got)-1]
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Closing a silent path with a connection held open ends every goroutine the
// path started (TestMain checks for leaks).
func TestClosingASilentPathLeavesNothing(t *testing.T) {
	p, err := pathcut.New("silent-close", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	defer c.Close()
	roundTrip(t, c, "hello")
	if err := p.Silence(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a connection through a closed path: want closed, got %v", err)
	}
}

// flowlab's own clients dial through DialContext: with no fault set they
// talk to the upstream's own socket, with no proxy in between.
func TestDialedConnectionGoesStraightToTheUpstream(t *testing.T) {
	echo := startEcho(t)
	p, err := pathcut.New("straight", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialPath(t, p)
	defer c.Close()
	if got := c.RemoteAddr().String(); got != echo {
		t.Fatalf("a dialed connection's peer is %s, want the upstream %s", got, echo)
	}
	if got := roundTrip(t, c, "hello"); got != "hello" {
		t.Fatalf("echo: got %q", got)
	}
}

func TestDialedConnectionIsCutAndRestored(t *testing.T) {
	p, err := pathcut.New("dial-cut", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialPath(t, p)
	defer c.Close()
	roundTrip(t, c, "before")
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		waiting <- err
	}()

	p.Cut()
	select {
	case err := <-waiting:
		if err != io.EOF {
			t.Fatalf("a read waiting when the path was cut: want EOF, as from a peer that closed, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a read waiting when the path was cut is still waiting")
	}
	if _, err := c.Write([]byte("x\n")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("a write on a cut connection: want a broken pipe, got %v", err)
	}
	if _, err := p.DialContext(context.Background(), "tcp"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while cut: want connection refused, got %v", err)
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c2 := dialPath(t, p)
	defer c2.Close()
	if got := roundTrip(t, c2, "after"); got != "after" {
		t.Fatalf("echo after restore: got %q", got)
	}
}

func TestDialedConnectionIsSilenced(t *testing.T) {
	p, err := pathcut.New("dial-silent", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	old := dialPath(t, p)
	defer old.Close()
	roundTrip(t, old, "before")

	if err := p.Silence(); err != nil {
		t.Fatal(err)
	}
	fresh := dialPath(t, p) // made, as a black hole lets it be
	defer fresh.Close()
	for _, c := range []net.Conn{old, fresh} {
		if _, err := io.WriteString(c, "lost\n"); err != nil {
			t.Fatalf("write into a silent path: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("read through a silent path: want a timeout (nothing arrives, nothing closes), got %v", err)
		}
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a silenced connection after Restore: want EOF, got %v", err)
	}
	c := dialPath(t, p)
	defer c.Close()
	if got := roundTrip(t, c, "after"); got != "after" {
		t.Fatalf("echo after the silence: %q", got)
	}
}

// A latency applies at once, also to a read already waiting on the
// connection (a client library's reader always is), and the reader's own
// deadline still holds while its bytes are held back.
func TestDialedConnectionIsDelayed(t *testing.T) {
	p, err := pathcut.New("dial-slow", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dialPath(t, p)
	defer c.Close()
	roundTrip(t, c, "before")

	r := bufio.NewReader(c)
	got := make(chan time.Time, 1)
	go func() {
		r.ReadString('\n')
		got <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // the read is waiting on the socket
	if err := p.SetLatency(200); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	io.WriteString(c, "slow\n")
	select {
	case at := <-got:
		if d := at.Sub(sent); d < 190*time.Millisecond {
			t.Fatalf("an echo with 200 ms latency came back after %v", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("an echo with 200 ms latency never came back")
	}

	io.WriteString(c, "held\n")
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.ReadString('\n'); !isTimeout(err) {
		t.Fatalf("a read with a 50 ms deadline of bytes held 200 ms: want a timeout, got %v", err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := r.ReadString('\n'); line != "held\n" || err != nil {
		t.Fatalf("the held bytes, read again in time: %q, %v", line, err)
	}

	if err := p.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	io.WriteString(c, "fast\n")
	if line, err := r.ReadString('\n'); line != "fast\n" || err != nil {
		t.Fatalf("after removing latency: %q, %v", line, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("round trip after removing latency took %v", d)
	}
}

// Closing a path ends the reader a delayed connection started (TestMain
// checks for leaks), and its reads say EOF.
func TestClosingADelayedPathLeavesNothing(t *testing.T) {
	p, err := pathcut.New("slow-close", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dialPath(t, p)
	defer c.Close()
	if err := p.SetLatency(10); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hello")
	p.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a connection through a closed path: want EOF, got %v", err)
	}
}

func dialPath(t *testing.T, p *pathcut.Path) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := p.DialContext(ctx, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
