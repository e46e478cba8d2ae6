package eventdriven

// For the tests of the consumer's check of an event.
var (
	WellFormed           = wellFormed
	AsOrderServiceWrites = asOrderServiceWrites
	OrderEvent           = orderEvent
)

// AckedCopies is how many copies the consumers have acked, read without
// building Stats, so that a benchmark can watch it every millisecond.
func (s *Scenario) AckedCopies() int64 {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	return s.ledger.totals.acked
}

// MaxBacklog is the cap on orders waiting to be sent.
const MaxBacklog = maxBacklog
