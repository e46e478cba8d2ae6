package eventdriven

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// publisher is order-service: it publishes order_placed events at the
// learner's rate, either over one long-lived connection or, as the article's
// publish_event does, over a new connection per event.
type publisher struct {
	s      *Scenario
	status *rabbit.Status
	wake   chan struct{} // a setting changed

	mu    sync.Mutex // guards the fields below
	set   publisherSettings
	burst int       // events still to send at once, beside the rate
	costs []float64 // milliseconds per publish since the chart last looked
	p50   float64

	// again is an event whose publish was never confirmed because its
	// connection died (a black hole swallows the publish or its confirm): it
	// is published again before anything new. Only run's goroutine touches it.
	again *orderMessage
}

// orderMessage is one order_placed event on its way to the exchange.
type orderMessage struct {
	id     string
	body   []byte
	poison bool
	routed []bool // per consumer, whether a queue was there to take its copy
	again  bool   // sent before, never confirmed
}

type publisherSettings struct {
	rate       int // events per second; 0 pauses
	perPublish bool
	confirms   bool
	mandatory  bool
	poison     int // percent of events that are malformed
}

// articlePublisher is what the article's publish_event does.
var articlePublisher = publisherSettings{rate: 2, perPublish: true}

func newPublisher(s *Scenario) *publisher {
	return &publisher{s: s, status: s.broker.NewStatus(nodeOrderService, "starting"), wake: make(chan struct{}, 1), set: articlePublisher}
}

// errSettingsChanged ends a connection whose settings no longer hold.
var errSettingsChanged = errors.New("settings changed")

// errRefused ends a connection on which the broker refused a publish, so that
// publishing it again, first thing on the next, waits out the backoff.
var errRefused = errors.New("the broker refused a publish")

// run publishes until ctx ends, reconnecting with backoff after a failure.
// It starts once every consumer has tried to bind its queue: an event
// published before an exclusive queue exists is lost to it, and a fresh lab
// should lose nothing.
func (p *publisher) run(ctx context.Context) {
	for _, c := range p.s.consumers {
		select {
		case <-ctx.Done():
			return
		case <-c.tried:
		}
	}
	next := time.Now()
	rabbit.Retry(ctx, p.status, p.wake, func() (bool, error) {
		set := p.settings()
		if set.rate == 0 && p.burstLeft() == 0 && p.again == nil {
			p.status.Set("paused", nil)
			select {
			case <-ctx.Done():
			case <-p.wake:
			}
			return false, nil
		}
		var err error
		if set.perPublish {
			err = p.publishEach(ctx, set, &next)
		} else {
			err = p.longLived(ctx, set, &next)
		}
		if err == nil || errors.Is(err, errSettingsChanged) {
			return true, nil // only a session that ended well starts the backoff afresh
		}
		return false, err
	})
}

// longLived publishes over one connection and one channel until the
// connection fails or a setting that shapes the channel changes.
func (p *publisher) longLived(ctx context.Context, set publisherSettings, next *time.Time) error {
	p.status.Set("connecting", nil)
	conn, err := p.s.broker.Dial(ctx, nodeOrderService)
	if err != nil {
		return err
	}
	from := p.s.ledger.nextSend()
	defer func() {
		// A close the broker answered came after it took in every publish
		// before it; without that answer, and without confirms, what was sent
		// on this connection may be gone.
		if conn.Close() != nil && !set.confirms {
			p.s.ledger.doubtSince(from, time.Now())
		}
	}()
	ch, returns, err := p.openChannel(conn, set)
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	p.status.Set("up", nil)
	if err := p.sendAgain(ctx, ch, set, time.Now()); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return rabbit.ConnectionLost(err)
		case r, ok := <-returns:
			if !ok {
				returns = nil // the channel closed; closed says why
				continue
			}
			p.returned(r)
		case <-p.wake:
			now := p.settings()
			if now.perPublish != set.perPublish || now.confirms != set.confirms {
				return errSettingsChanged
			}
			set = now
		case <-p.due(set, next):
			p.sending(set, next)
			if err := p.publish(ctx, ch, set, p.newOrder(set), time.Now()); err != nil {
				return err
			}
			drainReturns(returns, p.returned)
		}
	}
}

// publishEach does what the article does for every event: connect, open a
// channel, declare the exchange, publish, close. The cost of that shows in
// the publish latency.
func (p *publisher) publishEach(ctx context.Context, set publisherSettings, next *time.Time) error {
	for {
		if p.again == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
				if now := p.settings(); !now.perPublish {
					return errSettingsChanged
				}
				set = p.settings()
				continue
			case <-p.due(set, next):
			}
			p.sending(set, next)
		}
		if err := p.publishOnce(ctx, set); err != nil {
			return err
		}
		p.status.Set("up", nil)
	}
}

// publishOnce connects, publishes the event to send again or else a new one,
// and closes the connection.
func (p *publisher) publishOnce(ctx context.Context, set publisherSettings) error {
	start := time.Now()
	conn, err := p.s.broker.Dial(ctx, nodeOrderService)
	if err != nil {
		return err
	}
	from := p.s.ledger.nextSend()
	ch, returns, err := p.openChannel(conn, set)
	switch {
	case err != nil:
	case p.again != nil:
		err = p.sendAgain(ctx, ch, set, start)
	default:
		err = p.publish(ctx, ch, set, p.newOrder(set), start)
	}
	// The broker routed the event before it answers the close; without that
	// answer, and without confirms, the event may be gone.
	if conn.Close() != nil && !set.confirms {
		p.s.ledger.doubtSince(from, time.Now())
	}
	drainReturns(returns, p.returned)
	return err
}

// openChannel opens the publishing channel and declares the exchange as the
// article does (fanout, not durable), so that the article's own clients can
// declare it too without a conflict.
func (p *publisher) openChannel(conn *rabbit.Conn, set publisherSettings) (*amqp.Channel, chan amqp.Return, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	if err := declareExchange(ch, p.s.exchange); err != nil {
		return nil, nil, err
	}
	if set.confirms {
		if err := ch.Confirm(false); err != nil {
			return nil, nil, err
		}
	}
	// At most one publish is outstanding, so this buffer never fills and the
	// library's reader never blocks on it.
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))
	return ch, returns, nil
}

func declareExchange(ch *amqp.Channel, name string) error {
	return ch.ExchangeDeclare(name, amqp.ExchangeFanout, false, false, false, false, nil)
}

// newOrder opens the ledger's record of a new order_placed event and writes
// it.
func (p *publisher) newOrder(set publisherSettings) orderMessage {
	id, seq, routed := p.s.ledger.publish()
	body, poison := orderEvent(seq, set.poison)
	return orderMessage{id: id, body: body, poison: poison, routed: routed}
}

// sendAgain publishes the event whose first publish was never confirmed, if
// there is one.
func (p *publisher) sendAgain(ctx context.Context, ch *amqp.Channel, set publisherSettings, start time.Time) error {
	m := p.again
	if m == nil {
		return nil
	}
	p.again = nil
	m.routed = p.s.ledger.sendAgain(m.id)
	return p.publish(ctx, ch, set, *m, start)
}

// publish sends one order_placed event and, with confirms on, waits for the
// broker's confirm. The publish event goes out before the broker can act on
// the message, so that no trace shows a delivery before its publish; in the
// article's mode it carries what opening a connection cost before the event
// could even be sent. The whole cost, from start to the confirm or the end of
// the publish, goes to the chart. An event whose confirm never came because
// its channel closed is published again on the next connection: at least
// once. An error means the connection is failing.
func (p *publisher) publish(ctx context.Context, ch *amqp.Channel, set publisherSettings, m orderMessage, start time.Time) error {
	ev := flow.Event{Kind: flow.KindPublish, From: nodeOrderService, To: nodeExchange, MsgID: m.id,
		Detail: flow.Detail{LatencyMS: millis(time.Since(start)), Payload: shorten(m.body), Raw: m.poison}}
	if m.again {
		ev.Detail.Outcome = "published again: the first publish was never confirmed"
	}
	p.s.emit.Emit(ev)
	msg := amqp.Publishing{
		ContentType: "application/json",
		MessageId:   m.id,
		AppId:       "flowlab",
		Timestamp:   time.Now(),
		Body:        m.body,
	}
	var confirm *amqp.DeferredConfirmation
	var err error
	if set.confirms {
		confirm, err = ch.PublishWithDeferredConfirmWithContext(ctx, p.s.exchange, "", set.mandatory, false, msg)
	} else {
		err = ch.PublishWithContext(ctx, p.s.exchange, "", set.mandatory, false, msg)
	}
	if err != nil {
		if m.again {
			p.again = &m // the first publish may have reached the broker: keep trying
		} else {
			p.s.ledger.unpublish(m.id)
		}
		p.s.emit.Emit(flow.Event{Kind: flow.KindError, From: nodeOrderService, To: nodeExchange, MsgID: m.id,
			Detail: flow.Detail{Outcome: "not published", Error: rabbit.ErrorText(err)}})
		return err
	}
	for i, name := range consumerNames {
		if m.routed[i] {
			p.s.emit.Emit(flow.Event{Kind: flow.KindRoute, From: nodeExchange, To: queueNode(name), MsgID: m.id,
				Detail: flow.Detail{Queue: name}})
		} else if !m.again {
			p.s.emit.Emit(flow.Event{Kind: flow.KindDrop, From: nodeExchange, To: queueNode(name), MsgID: m.id,
				Detail: flow.Detail{Queue: name, Outcome: "no queue bound: " + name + "'s exclusive queue is gone"}})
		}
	}
	if confirm != nil {
		// A confirm is the broker's ack to the publisher: drawn as one.
		ok, werr := confirm.WaitContext(ctx)
		ev := flow.Event{Kind: flow.KindAck, From: nodeExchange, To: nodeOrderService, MsgID: m.id,
			Detail: flow.Detail{LatencyMS: millis(time.Since(start)), Outcome: "confirmed by the broker"}}
		switch {
		case werr != nil:
			ev.Kind, ev.Detail.Outcome = flow.KindNack, "unconfirmed: order-service stopped waiting"
		case ok:
			p.s.ledger.confirm(m.id)
		default:
			m.again = true
			p.again = &m
			ev.Kind, ev.Detail.Outcome = flow.KindNack, "not confirmed: the broker refused it or the connection closed; it will be published again"
			err = errRefused
			if ch.IsClosed() {
				err = amqp.ErrClosed
			}
		}
		p.s.emit.Emit(ev)
	}
	p.mu.Lock()
	p.costs = append(p.costs, millis(time.Since(start)))
	p.mu.Unlock()
	return err
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// returned handles an event the broker sent back because no queue was bound.
func (p *publisher) returned(r amqp.Return) {
	lost := p.s.ledger.returnMessage(r.MessageId)
	p.s.emit.Emit(flow.Event{Kind: flow.KindReturn, From: nodeExchange, To: nodeOrderService, MsgID: r.MessageId,
		Detail: flow.Detail{Outcome: fmt.Sprintf("returned: %d %s", r.ReplyCode, r.ReplyText)}})
	for _, c := range lost {
		p.s.emit.Emit(flow.Event{Kind: flow.KindDrop, From: nodeExchange, To: queueNode(consumerNames[c]), MsgID: r.MessageId,
			Detail: flow.Detail{Outcome: "returned unroutable"}})
	}
}

// drainReturns handles the returns already there; the library closes the
// channel when the AMQP channel closes.
func drainReturns(returns chan amqp.Return, handle func(amqp.Return)) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				return
			}
			handle(r)
		default:
			return
		}
	}
}

// due fires when the next event is due: at once while a burst lasts, else at
// the rate, never while paused.
func (p *publisher) due(set publisherSettings, next *time.Time) <-chan time.Time {
	switch {
	case p.burstLeft() > 0:
		return immediately
	case set.rate == 0:
		return nil
	}
	return time.After(time.Until(*next))
}

// immediately is a channel that is always ready.
var immediately = func() chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// sending takes the event about to be sent off the burst, or else moves the
// next due time on by one interval. Timers fire late by a millisecond or so,
// which at 500/s is half the rate, so a publisher a little behind catches up;
// one that fell far behind (a pause, an outage) does not rush.
func (p *publisher) sending(set publisherSettings, next *time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.burst > 0 {
		p.burst--
		return
	}
	if now := time.Now(); now.Sub(*next) > maxBehind {
		*next = now
	}
	*next = next.Add(time.Second / time.Duration(set.rate))
}

// maxBehind is how far behind its rate a publisher may catch up.
const maxBehind = 100 * time.Millisecond

func (p *publisher) burstLeft() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.burst
}

// orderEvent is the article's event: {"type": ..., "data": ...}, such as
//
//	{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":2}],"total":19}}
//
// written byte for byte as json.Marshal writes it, but by hand: it is built
// on the way to every publish, where json.Marshal's reflection took about
// 2 µs of each order's round trip (caches are cold after the wait for the last
// confirm). A poison event is cut off mid-way, as a buggy producer might send
// it.
func orderEvent(seq uint64, poisonPercent int) (body []byte, poison bool) {
	body = append(make([]byte, 0, 192), `{"type":"order_placed","data":{"order_id":`...)
	body = strconv.AppendUint(body, seq, 10)
	body = append(body, `,"items":[`...)
	var total float64
	for i := range 1 + rand.N(3) {
		sku, qty := skus[rand.N(len(skus))], 1+rand.N(3)
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"sku":"`...)
		body = append(body, sku...) // nothing in a sku needs escaping
		body = append(body, `","qty":`...)
		body = strconv.AppendInt(body, int64(qty), 10)
		body = append(body, '}')
		total += float64(qty) * 9.5
	}
	body = append(body, `],"total":`...)
	body = strconv.AppendFloat(body, total, 'f', -1, 64) // json.Marshal's form for a total this size
	body = append(body, "}}"...)
	if poisonPercent > 0 && rand.N(100) < poisonPercent {
		return body[:len(body)/2], true
	}
	return body, false
}

// skus are what order-service's customers buy.
var skus = []string{"mug", "t-shirt", "sticker", "notebook", "hoodie"}

// shorten keeps a payload small enough for an event. Bytes that are not
// UTF-8 would not survive the trip to the browser, so such a payload is shown
// escaped, as Go quotes it.
func shorten(body []byte) string {
	const most = 512
	cut := ""
	if len(body) > most {
		body, cut = body[:most], "…"
	}
	if !utf8.Valid(body) {
		return strconv.Quote(string(body)) + cut
	}
	return string(body) + cut
}

func (p *publisher) settings() publisherSettings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set
}

// takeCosts returns the median and 99th percentile publish cost since the last
// call, for the chart.
func (p *publisher) takeCosts() (p50, p99 float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.costs) == 0 {
		return 0, 0
	}
	slices.Sort(p.costs)
	p50 = p.costs[len(p.costs)/2]
	p99 = p.costs[min(len(p.costs)-1, len(p.costs)*99/100)]
	p.p50 = p50
	p.costs = p.costs[:0]
	return p50, p99
}

// state is order-service's node: its knobs as the learner set them, what
// waits to be sent, what a publish costs, and the broker it cannot reach.
func (p *publisher) state() flow.NodeState {
	st, errText := p.status.Get()
	p.mu.Lock()
	defer p.mu.Unlock()
	connection := connLongLived
	if p.set.perPublish {
		connection = connPerPublish
	}
	return flow.NodeState{State: st, Facts: []flow.Fact{
		flow.Flag("paused", p.set.rate == 0, "paused"),
		flow.Count("rate-per-s", int64(p.set.rate), "%d events/s").When(p.set.rate > 0),
		flow.Count("unsent", int64(p.burst), "%d waiting to be sent").When(p.burst > 0),
		connectionFact(connection),
		flow.Flag("confirms", p.set.confirms, "confirms on"),
		flow.Flag("mandatory", p.set.mandatory, "mandatory"),
		flow.Count("poison-percent", int64(p.set.poison), "poison %d%%").When(p.set.poison > 0),
		flow.Measure("publish-cost-ms", p.p50, "publish cost %.2f ms (p50)").When(p.p50 > 0),
		flow.Word("broker", p.s.broker.Name, "broker %s").When(errText != ""),
		flow.Word("error", errText, "%s"),
	}}
}

// connectionFact is the connection knob's choice, drawn in a phrase that
// reads for each.
func connectionFact(choice string) flow.Fact {
	format := "%s connection"
	if choice == connPerPublish {
		format = "new connection %s"
	}
	return flow.Word("connection", choice, format)
}
