package workqueue

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// producer is order-service: for every order it queues one send_email job,
// over one long-lived connection, persistent and confirmed, since a job lost
// on the way would be an email never sent with nobody knowing.
type producer struct {
	s      *Scenario
	status *rabbit.Status
	wake   chan struct{}

	mu    sync.Mutex // guards the fields below
	rate  int        // jobs per second; 0 pauses
	burst int        // jobs still to send at once, beside the rate

	// again is a job whose publish was never confirmed because its
	// connection died (a black hole swallows the publish or its confirm): the
	// next session publishes it again before anything new. Only the session
	// goroutine touches it.
	again *amqp.Publishing
}

func newProducer(s *Scenario) *producer {
	return &producer{s: s, status: s.broker.NewStatus(nodeOrderService, "starting"), wake: make(chan struct{}, 1), rate: defaultRate}
}

// defaultRate is order-service's rate at the start, in orders per second.
const defaultRate = 2

func (p *producer) run(ctx context.Context) {
	rabbit.Retry(ctx, p.status, p.wake, func() (bool, error) { return p.session(ctx) })
}

// session publishes over one connection until it fails or ctx ends.
func (p *producer) session(ctx context.Context) (up bool, err error) {
	p.status.Set("connecting", nil)
	conn, err := p.s.broker.Dial(ctx, nodeOrderService)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := p.s.declareTopology(ch); err != nil {
		return false, err
	}
	if err := ch.Confirm(false); err != nil {
		return false, err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	p.status.Set("up", nil)
	if msg := p.again; msg != nil {
		p.again = nil
		if err := p.publish(ctx, ch, *msg, true); err != nil {
			return true, err
		}
	}
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-closed:
			return true, rabbit.ConnectionLost(err)
		case <-p.wake:
		case <-p.due(next):
			next = p.sending(next)
			if err := p.publish(ctx, ch, p.newJob(), false); err != nil {
				return true, err
			}
		}
	}
}

// due fires when the next job is due: at once while a burst lasts, at the
// rate otherwise, never while paused.
func (p *producer) due(next time.Time) <-chan time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.burst > 0:
		return immediately
	case p.rate == 0:
		return nil
	}
	return time.After(time.Until(next))
}

var immediately = func() chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// sending takes the job about to go off the burst, or returns when the one
// after it is due at the rate. Timers fire a little late, so a producer a
// little behind catches up; one far behind (a pause, an outage) does not rush.
func (p *producer) sending(next time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.burst > 0 {
		p.burst--
		return next
	}
	if now := time.Now(); now.Sub(next) > maxBehind {
		next = now
	}
	return next.Add(time.Second / time.Duration(p.rate))
}

// maxBehind is how far behind its rate a producer may catch up.
const maxBehind = 100 * time.Millisecond

// newJob opens the ledger's record of a new job and builds its message.
func (p *producer) newJob() amqp.Publishing {
	id := p.s.ledger.publish()
	body, _ := json.Marshal(emailJob{Type: "send_email", Data: emailData{OrderID: id, To: "customer@example.com", Template: "order_confirmation"}})
	now := time.Now()
	return amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		AppId:        "flowlab",
		Timestamp:    now,
		Headers:      amqp.Table{headerFirstSent: now.UnixMilli()},
		Body:         body,
	}
}

// publish queues one job and waits for the broker's confirm. A job whose
// connection died before its confirm may or may not be queued: at least once
// means publishing it again, and a worker that then gets it twice counts the
// duplicate. again says that msg is such a job. An error means the
// connection is failing.
func (p *producer) publish(ctx context.Context, ch *amqp.Channel, msg amqp.Publishing, again bool) error {
	id := msg.MessageId
	ev := flow.Event{Kind: flow.KindPublish, From: nodeOrderService, To: nodeEmails, MsgID: id, Attempt: 1,
		Detail: flow.Detail{Queue: p.s.queue, Payload: string(msg.Body)}}
	if again {
		ev.Detail.Outcome = "published again: the first publish was never confirmed"
	}
	p.s.emit.Emit(ev)
	start := time.Now()
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.s.queue, false, false, msg)
	if err != nil {
		if again {
			p.again = &msg // it may still be queued from the first time: keep trying
		} else {
			p.s.ledger.unpublish(id)
		}
		p.s.emit.Emit(flow.Event{Kind: flow.KindError, From: nodeOrderService, To: nodeEmails, MsgID: id,
			Detail: flow.Detail{Outcome: "not published", Error: rabbit.ErrorText(err)}})
		return err
	}
	ok, err := confirm.WaitContext(ctx)
	ev = flow.Event{Kind: flow.KindAck, From: nodeEmails, To: nodeOrderService, MsgID: id,
		Detail: flow.Detail{LatencyMS: millis(time.Since(start)), Outcome: "confirmed by the broker"}}
	switch {
	case err != nil:
		ev.Kind, ev.Detail.Outcome = flow.KindNack, "unconfirmed: order-service stopped waiting"
	case !ok && !ch.IsClosed():
		// The broker said no while the channel lived: the job is lost.
		p.s.ledger.lose(id)
		ev.Kind, ev.Detail.Outcome = flow.KindNack, "refused by the broker: the job is lost"
	case !ok:
		p.again = &msg
		ev.Kind, ev.Detail.Outcome = flow.KindNack, "unconfirmed: the connection closed; it may or may not be queued, so it will be published again"
		p.s.emit.Emit(ev)
		return amqp.ErrClosed
	}
	p.s.emit.Emit(ev)
	return nil
}

type emailJob struct {
	Type string    `json:"type"`
	Data emailData `json:"data"`
}

type emailData struct {
	OrderID  string `json:"order_id"`
	To       string `json:"to"`
	Template string `json:"template"`
}

func (p *producer) setKnob(name string, value any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch name {
	case "rate":
		v, err := flow.Typed[int](name, value)
		if err != nil {
			return err
		}
		p.rate = v
	case "send-100":
		if p.burst+100 > maxBacklog {
			return flow.Errorf(flow.Invalid, "%d orders are still waiting to be sent, and at most %d may wait: let them go out first", p.burst, maxBacklog)
		}
		p.burst += 100
	default:
		return flow.Errorf(flow.NotFound, "order-service has no knob %q", name)
	}
	rabbit.Signal(p.wake)
	return nil
}

// state is order-service's node: its rate, what waits to be sent, and the
// broker it cannot reach.
func (p *producer) state() flow.NodeState {
	st, errText := p.status.Get()
	p.mu.Lock()
	defer p.mu.Unlock()
	return flow.NodeState{State: st, Facts: []flow.Fact{
		flow.Flag("paused", p.rate == 0, "paused"),
		flow.Count("rate-per-s", int64(p.rate), "%d orders/s").When(p.rate > 0),
		flow.Count("unsent", int64(p.burst), "%d waiting to be sent").When(p.burst > 0),
		flow.Word("broker", p.s.broker.Name, "broker %s").When(errText != ""),
		flow.Word("error", errText, "%s"),
	}}
}

// percentiles returns the median and 99th percentile of ds in milliseconds.
func percentiles(ds []time.Duration) (p50, p99 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return millis(ds[len(ds)/2]), millis(ds[min(len(ds)-1, len(ds)*99/100)])
}
