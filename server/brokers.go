package main

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerState is what the page and the health endpoint say about a broker.
type brokerState struct {
	Name     string `json:"name"`               // "Kafka" or "RabbitMQ"
	OK       bool   `json:"ok"`                 // answered the last probe
	Starting bool   `json:"starting,omitempty"` // flowlab's private node is on its way
	Where    string `json:"where"`              // address, credentials removed
	Status   string `json:"status"`             // one sentence for a person
}

// brokerWatch probes each broker every probeEvery, so the page always says
// whether it answers.
type brokerWatch struct {
	kafkaAddrs []string
	embedded   bool
	amqpURL    string
	node       *rabbitNode // flowlab's private RabbitMQ node, or nil
	howTo      string      // how to get a RabbitMQ that answers
	kafka      *kgo.Client
	rabbit     *amqp.Connection // only Run's goroutine uses it, then Close

	mu     sync.Mutex
	states []brokerState
}

const (
	probeEvery   = 2 * time.Second
	probeTimeout = 2 * time.Second
)

func newBrokerWatch(kafkaAddrs []string, embedded bool, rabbit rabbitPlan) *brokerWatch {
	w := &brokerWatch{kafkaAddrs: kafkaAddrs, embedded: embedded, amqpURL: rabbit.URL, node: rabbit.Node, howTo: rabbit.HowTo}
	w.states = []brokerState{
		{Name: "Kafka", Where: strings.Join(kafkaAddrs, ","), Status: "checking…"},
		{Name: "RabbitMQ", Where: redactURL(rabbit.URL), Status: "checking…"},
	}
	// The client dials lazily, so creating it cannot fail on an absent broker.
	w.kafka, _ = kgo.NewClient(kgo.SeedBrokers(kafkaAddrs...))
	return w
}

// Run probes until ctx ends.
func (w *brokerWatch) Run(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		w.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *brokerWatch) Close() {
	if w.kafka != nil {
		w.kafka.Close()
	}
	if w.rabbit != nil {
		w.rabbit.Close()
	}
}

// States returns a copy of the latest probe results.
func (w *brokerWatch) States() []brokerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]brokerState(nil), w.states...)
}

func (w *brokerWatch) probe(ctx context.Context) {
	k := w.probeKafka(ctx)
	r := w.probeRabbit()
	w.mu.Lock()
	w.states = []brokerState{k, r}
	w.mu.Unlock()
}

func (w *brokerWatch) probeKafka(ctx context.Context) brokerState {
	s := brokerState{Name: "Kafka", Where: strings.Join(w.kafkaAddrs, ",")}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	kind := "external cluster"
	if w.embedded {
		kind = "embedded broker (kfake)"
	}
	if err := w.kafka.Ping(ctx); err != nil {
		s.Status = kind + " not answering: " + err.Error()
		return s
	}
	s.OK, s.Status = true, kind+" answering"
	return s
}

// probeRabbit keeps one connection open and dials again only once it has
// closed: a connection per probe would be the article's connection per
// publish, every two seconds, in the broker's log. A short heartbeat makes a
// broker that went away show within seconds. While flowlab's private node
// is starting or down, the node says what it is doing instead.
func (w *brokerWatch) probeRabbit() brokerState {
	s := brokerState{Name: "RabbitMQ", Where: redactURL(w.amqpURL), Status: "answering"}
	if w.node != nil {
		var p nodePhase
		p, s.Status = w.node.State()
		if p != nodeUp {
			s.Starting = p == nodeStarting
			return s
		}
	}
	if w.rabbit != nil && !w.rabbit.IsClosed() {
		s.OK = true
		return s
	}
	conn, err := amqp.DialConfig(w.amqpURL, amqp.Config{Dial: amqp.DefaultDial(probeTimeout), Heartbeat: probeEvery})
	if err != nil {
		s.Status = "not answering (" + err.Error() + "). " + w.howTo + " flowlab keeps trying every few seconds."
		return s
	}
	w.rabbit = conn
	s.OK = true
	return s
}

// redactURL drops the password, which the page and logs must never show.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
