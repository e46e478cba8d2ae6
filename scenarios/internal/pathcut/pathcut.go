// Package pathcut puts a real TCP path between a scenario's sample services and
// a broker, so that a learner can cut it, restore it and slow it down while the
// broker itself keeps running for everyone else.
//
// It is an in-process proxy built on Toxiproxy's Go library (no Toxiproxy
// server, no HTTP API). Point the clients at Addr instead of the broker:
//
//	p, err := pathcut.New("kafka", "127.0.0.1:9092")
//	if err != nil { … }
//	defer p.Close()
//	client := dial(p.Addr()) // e.g. kgo.SeedBrokers(p.Addr())
//	p.Cut()                  // live connections close, new dials are refused
//	p.Restore()              // dials succeed again on the same address
//	p.Silence()              // connections stay open but carry nothing
//	p.Restore()              // silenced connections close; new ones work
//	p.SetLatency(300)        // every byte from the broker arrives 300 ms later
//	p.SetLatency(0)          // no added latency
//
// What clients see is what a real outage looks like. Cut closes their
// connections (reads fail at once) and refuses new ones, so their own
// reconnect logic runs at once. Silence is the nastier outage, a pulled cable
// or a firewall dropping packets: nothing fails, nothing arrives, and clients
// notice only when a heartbeat or timeout of their own runs out. Addr stays
// the same for the life of the Path.
//
// A client that learns broker addresses from the broker itself (Kafka's
// metadata) would dial the advertised address and go around the path after
// its first connection. Send every dial through the path instead, e.g. with
// franz-go:
//
//	kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
//		var d net.Dialer
//		return d.DialContext(ctx, network, p.Addr())
//	})
//
// (one Path per broker when there are several).
//
// A Path is safe for concurrent use.
package pathcut

import (
	"context"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Path is one cuttable TCP path from 127.0.0.1:<port> to an upstream address.
type Path struct {
	mu      sync.Mutex
	proxy   *toxiproxy.Proxy
	addr    string
	cut     bool
	silent  bool
	latency int
	closed  bool
}

// The toxics a Path adds: one latency toxic, and a timeout toxic of 0 (drop
// every byte, close nothing) each way while silent.
const latencyToxic = "latency"

var silenceToxics = []string{"silence-upstream", "silence-downstream"}

// New starts a path named name (used only in errors) that listens on a free
// port of 127.0.0.1 and forwards every connection to upstream (host:port).
// Nothing is dialed until a client connects, so upstream may be down.
func New(name, upstream string) (*Path, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		return nil, fmt.Errorf("path %s: %w", name, err)
	}
	// Start replaced port 0 with the real one; Restore listens there again.
	return &Path{proxy: proxy, addr: proxy.Listen}, nil
}

// Addr is the host:port clients dial instead of the upstream.
func (p *Path) Addr() string { return p.addr }

// Cut closes every live connection through the path and refuses new ones
// until Restore. Cutting a cut path does nothing.
func (p *Path) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cut {
		return
	}
	p.proxy.Stop()
	p.cut = true
}

// Silence lets no byte through either way while keeping every connection,
// old and new, open, until Restore. Silencing a silent path does nothing.
func (p *Path) Silence() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.proxy.Name)
	}
	if p.silent {
		return nil
	}
	for i, name := range silenceToxics {
		stream := [...]string{"upstream", "downstream"}[i]
		toxic := fmt.Sprintf(`{"name":%q,"type":"timeout","stream":%q,"attributes":{"timeout":0}}`, name, stream)
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
			return fmt.Errorf("path %s: silence: %w", p.proxy.Name, err)
		}
	}
	p.silent = true
	return nil
}

// Restore ends a cut or a silence: connections silenced are closed (their
// lost bytes are gone), and new ones carry data again on the same address.
// It fails only when that port was taken by someone else while the path was
// cut.
func (p *Path) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.proxy.Name)
	}
	if p.silent {
		for _, name := range silenceToxics {
			if err := p.proxy.Toxics.RemoveToxic(context.Background(), name); err != nil {
				return fmt.Errorf("path %s: end silence: %w", p.proxy.Name, err)
			}
		}
		p.silent = false
	}
	if p.cut {
		if err := p.proxy.Start(); err != nil {
			return fmt.Errorf("restore path %s: %w", p.proxy.Name, err)
		}
		p.cut = false
	}
	return nil
}

// IsCut reports whether the path is cut now.
func (p *Path) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// IsSilent reports whether the path is silenced now.
func (p *Path) IsSilent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.silent
}

// SetLatency delays everything the upstream sends by ms milliseconds, so a
// request/response round trip grows by ms; 0 removes the delay. It applies to
// live connections at once and survives Cut and Restore.
func (p *Path) SetLatency(ms int) error {
	if ms < 0 {
		return fmt.Errorf("latency must be 0 or more milliseconds, not %d", ms)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("path %s is closed", p.proxy.Name)
	}
	if ms == p.latency {
		return nil
	}
	if p.latency > 0 {
		if err := p.proxy.Toxics.RemoveToxic(context.Background(), latencyToxic); err != nil {
			return fmt.Errorf("path %s: remove latency: %w", p.proxy.Name, err)
		}
		p.latency = 0
	}
	if ms > 0 {
		toxic := fmt.Sprintf(`{"name":%q,"type":"latency","stream":"downstream","attributes":{"latency":%d}}`, latencyToxic, ms)
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
			return fmt.Errorf("path %s: add latency: %w", p.proxy.Name, err)
		}
		p.latency = ms
	}
	return nil
}

// Latency is the delay SetLatency set, in milliseconds.
func (p *Path) Latency() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency
}

// Close cuts the path for good and frees its port.
func (p *Path) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.proxy.Stop()
	return nil
}
