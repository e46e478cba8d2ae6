package rabbit

// Backlog follows one queue's ready count from one reading to the next, to
// tell when a backlog drains: the consumers came back and the queue is
// catching up, which is what "eventually consistent" looks like.
type Backlog struct {
	last, peak int // the last reading, and the highest since the queue was last empty
}

// backlogMin is the fewest messages ready that make a backlog worth naming.
const backlogMin = 10

// Read takes the latest ready count and reports whether the queue is catching
// up: a backlog of at least backlogMin formed, and it has fallen since the
// reading before.
func (b *Backlog) Read(ready int) (catchingUp bool) {
	catchingUp = ready > 0 && ready < b.last && b.peak >= backlogMin
	b.last, b.peak = ready, max(b.peak, ready)
	if ready == 0 {
		b.peak = 0
	}
	return catchingUp
}

// CatchingUp is the badge format of a ready count while the queue catches up.
const CatchingUp = "catching up: %d ready — eventual consistency"
