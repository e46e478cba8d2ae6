// Package rabbit is the plumbing the RabbitMQ scenarios share, so that each
// scenario's own code says only what it teaches: its exchanges, queues,
// bindings, acks, retries and ledger stay in the scenario, and this package
// names no exchange or queue.
//
// What it holds:
//
//   - Broker: RabbitMQ as one scenario reaches it. The sample services dial
//     it with Broker.Dial, through a cuttable pathcut.Path, and the learner cuts,
//     silences, restores and slows that path with the broker.* knobs;
//     flowlab's own Watcher dials URL directly and keeps seeing the queues.
//   - Conn and Broker.Dial: a service's connection, with a heartbeat short enough to
//     show how long a silent path takes to notice, and Drop, a crash that
//     loses the socket without the polite AMQP close.
//   - Status and Retry: a service's state as its node shows it, and the loop
//     that runs its sessions, redialing with backoff after a failure. A
//     service that loses the broker while the path is cut says how long it
//     took to notice.
//   - Watcher and Queues: a direct connection that reads queue depths once a
//     second with passive declares, and reports whether the broker answers.
//
// A scenario opens a Broker in its Open, runs each service with Retry and the
// watcher with Watcher.Run in its Run, and closes the Broker when Run ends:
//
//	b, err := rabbit.Open(rabbit.Config{URL: cfg.AMQPURL, Path: "rabbitmq-" + lab.ID, Node: "exchange", Title: title, Emit: emit})
//	…
//	status := b.NewStatus("order-service", "starting")
//	rabbit.Retry(ctx, status, wake, func() (up bool, err error) {
//		conn, err := b.Dial(ctx, "order-service")
//		…
//	})
package rabbit

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/pathcut"
)

// DefaultURL is the broker a scenario uses when it is given none.
const DefaultURL = "amqp://guest:guest@localhost:5672/"

// Config says how a scenario reaches its broker.
type Config struct {
	URL   string        // the broker; DefaultURL when empty
	Path  string        // names the cuttable path, in errors
	Node  string        // the diagram node that stands for the broker: the broker.* knobs sit on it, the watcher's state is its state
	Title string        // the scenario's title, in errors
	Emit  *flow.Emitter // takes the state events
}

// Broker is RabbitMQ as one scenario reaches it. It is safe for concurrent
// use.
type Broker struct {
	URL        string // the broker as configured: what flowlab's own watcher dials
	ServiceURL string // the same broker through the cuttable path: what the sample services dial
	Name       string // the broker's address without credentials, for the page

	path  *pathcut.Path
	node  string
	title string
	emit  *flow.Emitter

	mu    sync.Mutex
	cutAt time.Time // when the learner last cut or silenced the path
}

// Open parses the broker's URL and starts the local end of the cuttable path.
// It dials nothing, so it succeeds whether or not a broker is there.
func Open(cfg Config) (*Broker, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	uri, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		return nil, flow.Errorf(flow.Invalid, "AMQP URL %q: %v", cfg.URL, err)
	}
	upstream := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	path, err := pathcut.New(cfg.Path, upstream)
	if err != nil {
		return nil, err
	}
	through := uri
	host, port, _ := net.SplitHostPort(path.Addr()) // Addr is always host:port
	through.Host = host
	through.Port, _ = strconv.Atoi(port)
	return &Broker{
		URL:        cfg.URL,
		ServiceURL: through.String(),
		Name:       fmt.Sprintf("%s://%s%s", uri.Scheme, upstream, vhostPath(uri.Vhost)),
		path:       path,
		node:       cfg.Node,
		title:      cfg.Title,
		emit:       cfg.Emit,
	}, nil
}

func vhostPath(vhost string) string {
	if vhost == "/" {
		return "/"
	}
	return "/" + vhost
}

// Close cuts the path for good: every service connection through it ends.
func (b *Broker) Close() error { return b.path.Close() }

// Knobs are the learner's knobs on the path, on the broker's node.
func (b *Broker) Knobs() []flow.Knob {
	return []flow.Knob{
		{Name: "broker.cut", Group: b.node, Label: "Cut the network path", Type: flow.ActionKnob,
			Help: "The services' TCP connections to RabbitMQ close and new ones are refused; the broker keeps running."},
		{Name: "broker.silence", Group: b.node, Label: "Silence the network path", Type: flow.ActionKnob,
			Help: fmt.Sprintf("A black hole: connections stay open but nothing gets through. The services notice only when their %s heartbeat runs out.", Heartbeat)},
		{Name: "broker.restore", Group: b.node, Label: "Restore the network path", Type: flow.ActionKnob},
		{Name: "broker.latency", Group: b.node, Label: "Network latency", Type: flow.IntKnob,
			Help: "Added to everything the broker sends to the services.", Min: 1, Max: 5000, Unit: "ms", Off: "none", Value: b.path.Latency()},
	}
}

// Set changes one of the path's knobs; name is what follows "broker.". A
// knob that does not apply now (restoring a path that is not cut) is refused
// and changes nothing.
func (b *Broker) Set(name string, value any) error {
	switch name {
	case "cut":
		if b.path.IsCut() {
			return flow.Errorf(flow.Invalid, "the path to the broker is already cut")
		}
		b.setCutAt(time.Now())
		b.path.Cut()
		b.emit.Emit(flow.Event{Kind: flow.KindState, From: b.node, To: b.node, Detail: flow.Detail{Knob: "broker.cut", Value: true}})
		return nil
	case "silence":
		if b.path.IsCut() || b.path.IsSilent() {
			return flow.Errorf(flow.Invalid, "the path to the broker is already cut or silent: restore it first")
		}
		if err := b.path.Silence(); err != nil {
			return flow.Errorf(flow.Internal, "%v", err)
		}
		b.setCutAt(time.Now())
		b.emit.Emit(flow.Event{Kind: flow.KindState, From: b.node, To: b.node, Detail: flow.Detail{Knob: "broker.silence", Value: true}})
		return nil
	case "restore":
		if !b.path.IsCut() && !b.path.IsSilent() {
			return flow.Errorf(flow.Invalid, "the path to the broker is neither cut nor silent")
		}
		if err := b.path.Restore(); err != nil {
			return flow.Errorf(flow.Unavailable, "could not restore the path: %v", err)
		}
		b.setCutAt(time.Time{})
		b.emit.Emit(flow.Event{Kind: flow.KindState, From: b.node, To: b.node, Detail: flow.Detail{Knob: "broker.restore"}})
		return nil
	case "latency":
		v, err := flow.Typed[int]("broker."+name, value)
		if err != nil {
			return err
		}
		if err := b.path.SetLatency(v); err != nil {
			return flow.Errorf(flow.Internal, "%v", err)
		}
		return nil
	}
	return flow.Errorf(flow.NotFound, "%s has no knob %q", b.title, "broker."+name)
}

func (b *Broker) setCutAt(t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cutAt = t
}

// PathFacts say what the learner did to the path, for the broker's node.
func (b *Broker) PathFacts() []flow.Fact {
	ms := b.path.Latency()
	return []flow.Fact{
		flow.Flag("path-cut", b.path.IsCut(), "path from the services cut"),
		flow.Flag("path-silent", b.path.IsSilent(), "path from the services silent (black hole)"),
		flow.Count("path-latency-ms", int64(ms), "path latency %d ms").When(ms > 0),
	}
}

// ReachFacts say whether the watcher reaches the broker, for the broker's
// node: when it does not (err is what the client library said), where
// flowlab looks for RabbitMQ and how to start it.
func (b *Broker) ReachFacts(err string) []flow.Fact {
	return []flow.Fact{
		flow.Flag("unreachable", err != "", "no broker at "+b.Name+": start RabbitMQ (docker compose up, or apt-get install rabbitmq-server); retrying"),
		flow.Word("error", err, "%s"),
	}
}

// changed emits a change of a node's state from was to state. When a service
// that was up loses the broker while the path is cut, the event carries how
// long it took to notice: at once for a closed socket, about 1.5 heartbeats
// for a path that went silent.
func (b *Broker) changed(node, was, state string, err error) {
	d := flow.Detail{Node: node, State: state}
	if err != nil {
		d.Error = ErrorText(err)
	}
	if was == "up" && state != "up" {
		b.mu.Lock()
		if !b.cutAt.IsZero() {
			d.LatencyMS = float64(time.Since(b.cutAt).Microseconds()) / 1000
		}
		b.mu.Unlock()
	}
	b.emit.Emit(flow.Event{Kind: flow.KindState, From: node, To: node, Detail: d})
}
