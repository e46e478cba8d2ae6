package eventdriven_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// An outside client, on a connection of its own and sharing no code with the
// scenario, publishes into the lab's exchange (one JSON event without a
// message id, one that is not JSON at all) and consumes flowlab's events from
// a queue it binds itself.
func TestOutsideClientsJoinTheExchange(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))

	conn, err := amqp.Dial(rabbittest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	exchange := l.lab.Name("ecommerce")
	// The article's own declaration: fanout, not durable.
	if err := ch.ExchangeDeclare(exchange, "fanout", false, false, false, false, nil); err != nil {
		t.Fatalf("declaring the exchange as the article does: %v", err)
	}
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	good := `{"type":"order_placed","data":{"order_id":9001,"items":[{"sku":"mug","qty":1}],"total":9.5}}`
	for _, body := range []string{good, "not json \x00\xff"} {
		if err := ch.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}

	// flowlab sees both, each once, marked external, payload included.
	rabbittest.WaitFor(t, l, 2*time.Second, "both outside events delivered to every consumer", func(flow.Stats) bool {
		return l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindDeliver && e.Detail.External }) == 6
	})
	published := map[string]flow.Event{}
	for _, e := range l.sink.Events() {
		if e.Kind == flow.KindPublish && e.From == "outside-client" {
			published[e.Detail.Payload] = e
		}
	}
	if e, ok := published[good]; !ok || !e.Detail.External || e.Detail.Raw || e.MsgID == "" {
		t.Errorf("the JSON event from outside: %+v", e)
	}
	if e, ok := published[`"not json \x00\xff"`]; !ok || !e.Detail.External || !e.Detail.Raw {
		t.Errorf("the raw event from outside: %+v", e)
	}
	if len(published) != 2 {
		t.Errorf("%d publish events from outside, want 2", len(published))
	}
	ids := map[string]int{}
	for _, e := range l.sink.Events() {
		if e.Kind == flow.KindDeliver && e.Detail.External {
			ids[e.MsgID]++
		}
	}
	for id, n := range ids {
		if n != 3 {
			t.Errorf("outside message %s delivered %d times under its id, want once per consumer", id, n)
		}
	}
	st := rabbittest.WaitFor(t, l, 2*time.Second, "consumers still up", rabbittest.AllUp(consumers...))
	if got := rabbittest.Counter(st, "outside-messages"); got != 2 {
		t.Errorf("external counter %d, want 2", got)
	}
	if got := rabbittest.Counter(st, "published"); got != 0 {
		t.Errorf("outside events counted as published by order-service: %d", got)
	}
	mustBalance(t, st)

	// flowlab's events reach the outside consumer, with their message ids.
	for range 2 { // its own two events come first
		<-deliveries
	}
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	select {
	case d := <-deliveries:
		var e struct {
			Type string `json:"type"`
			Data struct {
				OrderID int `json:"order_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.Body, &e); err != nil || e.Type != "order_placed" || d.MessageId != l.publishedID(1) {
			t.Errorf("outside consumer got %q (id %q), want order_placed %s", d.Body, d.MessageId, l.publishedID(1))
		}
	case <-ctx.Done():
		t.Fatal("no flowlab event reached the outside consumer")
	}
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}

// The article's own publisher, run by Python's pika where it is installed,
// shows up in the view like any outside client.
func TestArticlePikaPublisherJoins(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import pika").Run() != nil {
		t.Skip("no /usr/bin/python3 with pika (Debian: apt-get install python3-pika)")
	}
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	uri, err := amqp.ParseURI(rabbittest.URL())
	if err != nil {
		t.Fatal(err)
	}
	// The article's publish_event, with the broker and exchange as arguments.
	script := `
import json, sys
import pika
def publish_event(event_type, data):
    connection = pika.BlockingConnection(pika.ConnectionParameters(sys.argv[1], int(sys.argv[2])))
    channel = connection.channel()
    channel.exchange_declare(exchange=sys.argv[3], exchange_type='fanout')
    event = {'type': event_type, 'data': data}
    channel.basic_publish(exchange=sys.argv[3], routing_key='', body=json.dumps(event))
    connection.close()
publish_event('order_placed', {'order_id': 42, 'items': ['mug'], 'total': 9.5})
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, uri.Host, strconv.Itoa(uri.Port), l.lab.Name("ecommerce")).CombinedOutput()
	if err != nil {
		t.Fatalf("the article's publisher: %v: %s", err, out)
	}
	rabbittest.WaitFor(t, l, time.Second, "the pika event processed by every consumer", func(flow.Stats) bool {
		return l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindAck && e.Detail.External }) == 3
	})
	n := l.sink.Count(func(e flow.Event) bool {
		return e.Kind == flow.KindPublish && e.From == "outside-client" && strings.Contains(e.Detail.Payload, `"order_id": 42`)
	})
	if n != 1 {
		t.Errorf("%d publish events from outside carrying the pika payload, want 1", n)
	}
}
