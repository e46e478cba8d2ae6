package rabbit

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Watcher is flowlab's own eye on the broker, not a sample service: it
// connects directly, not through the cuttable path, so that a learner who cuts
// the path still sees the queues fill. Once a second it hands its scenario
// the Queues to read; its status is the broker node's.
type Watcher struct {
	broker *Broker
	status *Status
	look   func(*Queues)
}

// NewWatcher returns a watcher that calls look once a second while it is
// connected.
func (b *Broker) NewWatcher(look func(*Queues)) *Watcher {
	return &Watcher{broker: b, status: b.NewStatus(b.node, "connecting"), look: look}
}

// Run watches until ctx ends, reconnecting with backoff.
func (w *Watcher) Run(ctx context.Context) {
	Retry(ctx, w.status, nil, func() (bool, error) { return w.session(ctx) })
}

func (w *Watcher) session(ctx context.Context) (up bool, err error) {
	conn, err := Dial(ctx, w.broker.URL, "watcher")
	if err != nil {
		return false, err
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	w.status.Set("up", nil)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	q := &Queues{conn: conn}
	for {
		w.look(q)
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-closed:
			return true, ConnectionLost(err)
		case <-t.C:
		}
	}
}

// State is whether the watcher reaches the broker, with what the client
// library said last.
func (w *Watcher) State() (state, err string) { return w.status.Get() }

// Queues reads queues over the watcher's connection with passive declares,
// since the management API may not be enabled.
type Queues struct {
	conn *Conn
	ch   *amqp.Channel
}

// Peek returns what the broker says of the named queue now, and false when
// the queue does not exist or the connection is failing. A passive declare of
// a missing queue closes its channel (404), so Peek opens a fresh one when
// the last was closed.
func (q *Queues) Peek(name string) (amqp.Queue, bool) {
	if q.ch == nil || q.ch.IsClosed() {
		ch, err := q.conn.Channel()
		if err != nil {
			return amqp.Queue{}, false
		}
		q.ch = ch
	}
	queue, err := q.ch.QueueDeclarePassive(name, false, false, false, false, nil)
	return queue, err == nil
}
