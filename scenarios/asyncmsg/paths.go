package asyncmsg

import (
	"context"
	"errors"
	"net"
	"sync"

	"flowlab/flow"
	"flowlab/scenarios/internal/pathcut"
)

// brokerPaths puts a cuttable TCP path between flowlab's own Kafka clients
// and every broker they talk to.
//
// A Kafka client dials the bootstrap address once and then whatever address
// each broker advertises in metadata, so pointing SeedBrokers at a proxy is
// not enough: the client would be sent straight to the broker's real port.
// Instead every client gets Dial as its kgo.Dialer: whatever broker address
// kgo wants, seed or advertised, is dialed through a path of its own, made
// the first time that address is seen. This works the same for the embedded
// broker and for any real cluster, needs nothing from the broker, and leaves
// outside clients (kcat, the learner's Python) untouched: the cut is
// flowlab's network path, not the broker.
type brokerPaths struct {
	mu        sync.Mutex
	paths     map[string]*pathcut.Path // by upstream broker address
	cut       bool
	latencyMS int
	closed    bool
}

func newBrokerPaths() *brokerPaths {
	return &brokerPaths{paths: make(map[string]*pathcut.Path)}
}

// Dial connects to the broker at host through its path.
func (b *brokerPaths) Dial(ctx context.Context, network, host string) (net.Conn, error) {
	p, err := b.path(host)
	if err != nil {
		return nil, err
	}
	return p.DialContext(ctx, network)
}

func (b *brokerPaths) path(host string) (*pathcut.Path, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("the scenario is shutting down")
	}
	if p, ok := b.paths[host]; ok {
		return p, nil
	}
	p, err := pathcut.New("kafka "+host, host)
	if err != nil {
		return nil, err
	}
	if b.cut {
		p.Cut() // a broker first seen during an outage is cut off too
	}
	if err := p.SetLatency(b.latencyMS); err != nil {
		p.Close()
		return nil, err
	}
	b.paths[host] = p
	return p, nil
}

// Cut closes every connection to every broker and refuses new ones.
func (b *brokerPaths) Cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = true
	for _, p := range b.paths {
		p.Cut()
	}
}

// Restore lets connections through again.
func (b *brokerPaths) Restore() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = false
	var errs []error
	for _, p := range b.paths {
		errs = append(errs, p.Restore())
	}
	return errors.Join(errs...)
}

// SetLatency delays every answer from every broker by ms milliseconds.
func (b *brokerPaths) SetLatency(ms int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latencyMS = ms
	var errs []error
	for _, p := range b.paths {
		errs = append(errs, p.SetLatency(ms))
	}
	return errors.Join(errs...)
}

// IsCut reports whether the learner cut the path.
func (b *brokerPaths) IsCut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cut
}

// Close frees every path's port.
func (b *brokerPaths) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, p := range b.paths {
		p.Close()
	}
}

// setPath cuts or restores the path and tells the view.
func (s *Scenario) setPath(rt *runtime, cut bool) error {
	if cut {
		rt.paths.Cut()
		s.state("orders", "unreachable", "the path from flowlab's clients to the broker is cut")
		return nil
	}
	if err := rt.paths.Restore(); err != nil {
		return flow.Errorf(flow.Unavailable, "could not restore the path to the broker: %v", err)
	}
	s.state("orders", "up", "the path to the broker is restored")
	return nil
}
