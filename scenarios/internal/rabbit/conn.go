package rabbit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Heartbeat is set low on purpose: a path that silently stops carrying bytes
// is noticed only after about 1.5 heartbeats. RabbitMQ's default of 60 s (10 s
// in amqp091) would leave a learner staring at a frozen view; 2 s shows the
// detection delay without hiding it.
const Heartbeat = 2 * time.Second

// dialTimeout bounds the TCP connect and the AMQP handshake.
const dialTimeout = 3 * time.Second

// Conn is one service's AMQP connection together with its TCP socket, so that
// a crash can drop the socket without the polite AMQP close.
type Conn struct {
	*amqp.Connection
	mu     sync.Mutex
	socket net.Conn
}

// errUnreachable marks a failure to connect at all, as opposed to a
// connection that was up and then failed.
var errUnreachable = errors.New("broker unreachable")

// Dial opens an AMQP connection to url for the named service, straight to
// the broker. It gives up when ctx ends, since amqp091 does not take a
// context.
func Dial(ctx context.Context, url, service string) (*Conn, error) {
	var d net.Dialer
	return dial(ctx, url, service, d.DialContext)
}

// Dial opens an AMQP connection for the named service through the broker's
// cuttable path.
func (b *Broker) Dial(ctx context.Context, service string) (*Conn, error) {
	return dial(ctx, b.ServiceURL, service, func(ctx context.Context, network, _ string) (net.Conn, error) {
		return b.path.DialContext(ctx, network)
	})
}

func dial(ctx context.Context, url, service string, dialer func(ctx context.Context, network, addr string) (net.Conn, error)) (*Conn, error) {
	c := &Conn{}
	cfg := amqp.Config{
		Heartbeat:  Heartbeat,
		Properties: amqp.Table{"connection_name": "flowlab " + service},
		Dial: func(network, addr string) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			sock, err := dialer(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake must not hang on a path that accepts and then
			// says nothing; amqp091 clears this deadline once it is done.
			sock.SetDeadline(time.Now().Add(dialTimeout))
			c.mu.Lock()
			c.socket = sock
			c.mu.Unlock()
			return sock, nil
		},
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	c.Connection = conn
	return c, nil
}

// Drop closes the TCP socket under the connection, as a process that dies
// does: no AMQP close, so the broker requeues what was unacked and deletes
// exclusive queues, exactly as after a real crash.
func (c *Conn) Drop() {
	c.mu.Lock()
	sock := c.socket
	c.mu.Unlock()
	sock.Close()
	c.Connection.Close() // reaps amqp091's goroutines; the error is expected
}

// ConnectionLost is the error for a connection whose NotifyClose channel
// delivered err: nil when the library closed it without a reason.
func ConnectionLost(err *amqp.Error) error {
	if err == nil {
		return errors.New("connection closed")
	}
	return err
}

// ErrorText is what a client library said, short enough for a badge.
func ErrorText(err error) string {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", ae.Code, ae.Reason)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// Signal wakes a goroutine waiting on ch without ever blocking.
func Signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
