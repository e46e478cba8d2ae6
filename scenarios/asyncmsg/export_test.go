package asyncmsg

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Progress reads two of the ledger's counts without building the rest of
// Stats (node states and facts), so that a benchmark can watch the group's
// progress every few milliseconds without adding that work to what it
// measures.
func (s *Scenario) Progress() (acked, done int64) {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	return s.ledger.acked, s.ledger.counts[processed]
}

// OrderRecord is order-service's event n as a plain kgo record: the same
// key and value, built the same way into one slice, without flowlab's
// header. Benchmarks use it so that a loop without flowlab does the same
// work to build its records.
func OrderRecord(n uint64) *kgo.Record {
	var buf [128]byte
	b, k := appendOrder(buf[:0], n)
	b = slices.Clone(b)
	return &kgo.Record{Key: b[:k:k], Value: b[k:]}
}

// DropConnections closes member i's connections to the broker once, as a
// reset by the network would, and lets it dial again at once.
func (s *Scenario) DropConnections(i int) {
	s.mu.Lock()
	m := s.members[i]
	s.mu.Unlock()
	m.sockets.mu.Lock()
	open := make([]*socket, 0, len(m.sockets.open))
	for c := range m.sockets.open {
		open = append(open, c)
	}
	m.sockets.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// TellChanges is one look of the 50 ms watch: it tells the state words that
// changed since last and returns every service's word now.
func (s *Scenario) TellChanges(last map[string]string) map[string]string {
	words := s.tellChanges(time.Now(), last, nil)
	now := make(map[string]string, len(words))
	for _, w := range words {
		now[w.node] = w.state
	}
	return now
}
