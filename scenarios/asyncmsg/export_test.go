package asyncmsg

// Progress reads two of the ledger's counts without building the rest of
// Stats (node states, badges), so that a benchmark can watch the group's
// progress every few milliseconds without adding that work to what it
// measures.
func (s *Scenario) Progress() (acked, done int64) {
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	return s.ledger.acked, s.ledger.counts[processed]
}
