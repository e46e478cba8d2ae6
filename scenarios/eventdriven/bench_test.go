package eventdriven_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/pathcut"
	"flowlab/scenarios/internal/rabbittest"
)

// BenchmarkFanout measures publish→consume throughput of the reliable setup
// (one long-lived connection, confirms and mandatory on; three durable
// queues, manual ack, prefetch 10), in the same run: through the scenario,
// every hop tapped into flow events (flowlab) or with its emitter set up as
// the server sets it up, drawing one message in k past flow.DrawRate
// (flowlab-sampled); as a bare amqp091 loop doing the same through a
// cuttable path as the scenario's services do; and as that bare loop
// straight to the broker. Each operation is one order: published,
// confirmed, and acked by all three consumers. flowlab / bare-path is the
// cost of tapping; bare-path / bare-direct the cost of the cuttable path.
//
//	go test -run '^$' -bench Fanout -benchtime 2000x ./scenarios/eventdriven/
func BenchmarkFanout(b *testing.B) {
	b.Run("flowlab", func(b *testing.B) { benchmarkScenario(b, 0) })
	b.Run("flowlab-sampled", func(b *testing.B) { benchmarkScenario(b, flow.DrawRate) })
	b.Run("bare-path", func(b *testing.B) {
		uri, err := amqp.ParseURI(rabbittest.URL())
		must(b, err)
		path, err := pathcut.New("bench", net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)))
		must(b, err)
		defer path.Close()
		host, port, _ := net.SplitHostPort(path.Addr())
		uri.Host = host
		uri.Port, _ = strconv.Atoi(port)
		benchmarkBare(b, uri.String())
	})
	b.Run("bare-direct", func(b *testing.B) { benchmarkBare(b, rabbittest.URL()) })
}

// eventCount takes events as a hub would: at once, without keeping them.
type eventCount struct{ n atomic.Int64 }

func (c *eventCount) Emit(flow.Event) { c.n.Add(1) }

// benchmarkScenario runs the scenario with an emitter that passes about
// perSecond message hops a second (0: every hop). It sees the last ack as
// the bare loop sees its own: polled every millisecond, from the ledger
// rather than through the scenario's Stats.
func benchmarkScenario(b *testing.B, perSecond int) {
	events := &eventCount{}
	l := mustStartSampled(b, rabbittest.URL(), events, perSecond)
	mustApply(b, l, "reliable")
	rabbittest.WaitFor(b, l, 10*time.Second, "every consumer up as reliable", reliableUp)
	orders := (b.N + 99) / 100 * 100 // the scenario sends orders a hundred at a time
	events.n.Store(0)                // state events of the start-up are not the orders'
	acked0 := l.AckedCopies()
	b.ResetTimer()
	for pressed := 0; pressed < orders/100; {
		// The backlog is capped: a press past it is refused, so wait for room.
		switch err := rabbittest.Set(l, "order-service.send-100", nil); {
		case err == nil:
			pressed++
		case flow.KindOf(err) == flow.Invalid:
			time.Sleep(time.Millisecond)
		default:
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(time.Minute); l.AckedCopies()-acked0 < int64(3*orders); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d acks of %d after a minute", l.AckedCopies()-acked0, 3*orders)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(orders)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64(events.n.Load())/float64(orders), "events/order")
	// The ledger, not only the events, must account for every copy.
	rabbittest.WaitFor(b, l, 10*time.Second, "every order acked by every consumer in the ledger", func(st flow.Stats) bool {
		return part(st, "acked") == int64(3*orders) && part(st, "in-flight") == 0
	})
}

// benchmarkBare is the same work with amqp091 alone: no ledger, no events.
func benchmarkBare(b *testing.B, url string) {
	id := make([]byte, 6)
	rand.Read(id)
	lab, _ := flow.NewLab("b" + hex.EncodeToString(id))
	exchange := lab.Name("ecommerce")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var acked atomic.Int64
	var running sync.WaitGroup
	for _, name := range consumers {
		conn, ch := mustChannel(b, url)
		defer conn.Close()
		q := lab.Name("ecommerce." + name)
		must(b, ch.ExchangeDeclare(exchange, "fanout", false, false, false, false, nil))
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		must(b, err)
		must(b, ch.QueueBind(q, "", exchange, false, nil))
		must(b, ch.Qos(10, 0, false))
		deliveries, err := ch.Consume(q, name, false, false, false, false, nil)
		must(b, err)
		defer ch.QueueDelete(q, false, false, false)
		running.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					d.Ack(false)
					acked.Add(1)
				}
			}
		})
	}
	conn, ch := mustChannel(b, url)
	defer conn.Close()
	defer ch.ExchangeDelete(exchange, false, false)
	must(b, ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))

	b.ResetTimer()
	for i := range b.N {
		confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "", true, false, amqp.Publishing{
			ContentType: "application/json", MessageId: fmt.Sprintf("bare-%d", i),
			Body: []byte(`{"type":"order_placed","data":{"order_id":1,"items":[{"sku":"mug","qty":1}],"total":9.5}}`),
		})
		must(b, err)
		if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
			b.Fatalf("not confirmed: %v", err)
		}
		select {
		case r := <-returns:
			b.Fatalf("returned: %s", r.ReplyText)
		default:
		}
	}
	for acked.Load() < int64(3*b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	cancel()
	running.Wait()
}

func mustChannel(tb testing.TB, url string) (*amqp.Connection, *amqp.Channel) {
	tb.Helper()
	conn, err := amqp.Dial(url)
	must(tb, err)
	ch, err := conn.Channel()
	must(tb, err)
	return conn, ch
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPublishConnection is the article's cost: publish_event opens a
// connection and a channel and declares the exchange for every event, then
// closes them; the fix keeps one connection for the service's life. Same
// message, same fanout exchange, no confirms in either (the article has
// none), straight to the broker.
//
//	go test -run '^$' -bench PublishConnection -benchtime 500x ./scenarios/eventdriven/
func BenchmarkPublishConnection(b *testing.B) {
	id := make([]byte, 6)
	rand.Read(id)
	lab, _ := flow.NewLab("b" + hex.EncodeToString(id))
	exchange := lab.Name("ecommerce")
	url := rabbittest.URL()
	body := []byte(`{"type":"order_placed","data":{"order_id":1,"items":[{"sku":"mug","qty":1}],"total":9.5}}`)
	ctx := context.Background()

	conn, ch := mustChannel(b, url)
	defer conn.Close()
	must(b, ch.ExchangeDeclare(exchange, "fanout", false, false, false, false, nil))
	defer ch.ExchangeDelete(exchange, false, false)

	b.Run("long-lived", func(b *testing.B) {
		conn, ch := mustChannel(b, url)
		defer conn.Close()
		for range b.N {
			must(b, ch.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{ContentType: "application/json", Body: body}))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	})
	b.Run("per-publish", func(b *testing.B) {
		for range b.N {
			conn, ch := mustChannel(b, url)
			must(b, ch.ExchangeDeclare(exchange, "fanout", false, false, false, false, nil))
			must(b, ch.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{ContentType: "application/json", Body: body}))
			must(b, conn.Close())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
	})
}
