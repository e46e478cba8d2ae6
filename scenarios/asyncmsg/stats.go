package asyncmsg

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"flowlab/flow"
)

// partitionRead is one partition as the broker last reported it.
type partitionRead struct {
	start, end int64
	committed  int64 // the group's committed offset, -1 when it has none
}

// lag is Kafka's consumer lag: the records after the group's committed
// offset, those deleted (retention) before it got to them left out. It
// counts records processed and not yet committed too.
func (p partitionRead) lag() int64 {
	return max(0, p.end-max(p.committed, p.start))
}

// unprocessed is how many records of the partition no member has processed,
// when reached is the offset after the newest one processed: what the
// ledger counts "in the log, not yet processed".
func (p partitionRead) unprocessed(reached int64) int64 {
	return max(0, p.end-max(reached, p.committed, p.start))
}

// behindAfter is how long a record may wait unprocessed before its
// partition is called behind. Records younger than that are on their way
// (fetched, in a member's batch of about a second); processed records
// waiting for their commit (auto-commit stores them every 5 s) are not
// waiting at all.
const behindAfter = 3 * time.Second

// reach notes that a member processed partition p's records up to next.
func (s *Scenario) reach(p int32, next int64) {
	if p < 0 || p >= maxPartitions {
		return
	}
	r := &s.reached[p]
	for {
		cur := r.Load()
		if next <= cur || r.CompareAndSwap(cur, next) {
			return
		}
	}
}

// endsRead is every partition's log end as read at a moment.
type endsRead struct {
	at     time.Time
	topics int // the ledger's log(): a read of a topic since deleted is dropped
	ends   []int64
}

// readBroker asks the broker once a second for every partition's offsets and
// the group's commits, directly rather than through the cuttable path: it is
// the view's eye, not a sample service, and lag should stay visible during
// an outage. It also closes the chart's second.
func (s *Scenario) readBroker(ctx context.Context, admin *kadm.Client) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	var sentBefore int64
	var producerBefore *orderService
	var history []endsRead // the newest reads, the oldest one behindAfter old or more
	backlog := int64(-1)   // records not yet processed at the read before
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		topics := s.ledger.log()
		parts, err := s.readPartitions(ctx, admin)
		if err == nil {
			s.ledger.trimmed(topics, parts)
		}
		now := time.Now()
		elapsed := now.Sub(last)
		last = now
		var ago []int64
		if err == nil {
			ends := make([]int64, len(parts))
			for p, r := range parts {
				ends[p] = r.end
			}
			history = append(history, endsRead{at: now, topics: topics, ends: ends})
			for len(history) > 1 && now.Sub(history[1].at) >= behindAfter {
				history = history[1:]
			}
			if h := history[0]; now.Sub(h.at) >= behindAfter && h.topics == topics {
				ago = h.ends
			}
		}
		var unprocessed int64
		for p, r := range parts {
			unprocessed += r.unprocessed(s.reachedAt(int32(p)))
		}

		s.mu.Lock()
		if err != nil {
			s.readErr = "cannot read offsets: " + err.Error()
		} else {
			s.parts, s.readErr, s.endsAgo = parts, "", ago
			s.draining = backlog >= 0 && unprocessed < backlog
			backlog = unprocessed
		}
		var depth int64
		for _, p := range s.parts {
			depth += p.lag()
		}
		s.point = s.window.point(now, elapsed, depth)
		if o := s.producer; o != nil {
			sent := o.sent.Load()
			if o == producerBefore {
				s.sendRate = float64(sent-sentBefore) / elapsed.Seconds()
			}
			producerBefore, sentBefore = o, sent
		}
		s.mu.Unlock()
	}
}

// reachedAt is the offset after the newest record of partition p that a
// member processed.
func (s *Scenario) reachedAt(p int32) int64 {
	if p < 0 || p >= maxPartitions {
		return 0
	}
	return s.reached[p].Load()
}

func (s *Scenario) readPartitions(ctx context.Context, admin *kadm.Client) ([]partitionRead, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	starts, err := admin.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, err
	}
	ends, err := admin.ListEndOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, err
	}
	committed, err := admin.FetchOffsets(ctx, s.group)
	if err != nil {
		return nil, err
	}
	parts := make([]partitionRead, s.partitionCount())
	for p := range parts {
		st, _ := starts.Lookup(s.topic, int32(p))
		end, _ := ends.Lookup(s.topic, int32(p))
		parts[p] = partitionRead{start: st.Offset, end: end.Offset, committed: -1}
		if c, ok := committed.Lookup(s.topic, int32(p)); ok && c.Err == nil {
			parts[p].committed = c.At
		}
	}
	return parts, nil
}

// Stats are the live counters, the ledger, each node's state and the newest
// chart point.
func (s *Scenario) Stats() flow.Stats {
	now := time.Now()
	led, counters := s.ledger.snapshot()
	rebalanced := s.rebalances.done()
	s.mu.Lock()
	point, rate := s.point, s.sendRate
	s.mu.Unlock()
	counters = append(counters,
		flow.Counter{Name: "rebalances", Label: "rebalances", Value: int64(rebalanced)},
		flow.Counter{Name: "send-rate", Label: "sent by order-service per second", Value: int64(rate)},
	)
	return flow.Stats{Nodes: s.nodeStates(now), Counters: counters, Ledger: led, Series: point}
}

// nodeStates is what each node of the view says now.
func (s *Scenario) nodeStates(now time.Time) map[string]flow.NodeState {
	s.mu.Lock()
	set, o, parts, readErr, rate, burst := s.set, s.producer, s.parts, s.readErr, s.sendRate, s.burst
	endsAgo, draining, last := s.endsAgo, s.draining, s.last
	members := s.members
	cut := s.rt != nil && s.rt.paths.IsCut()
	s.mu.Unlock()

	nodes := make(map[string]flow.NodeState, 4+maxPartitions+maxMembers)
	nodes["order-service"] = producerState(o, set, rate, burst, last)
	nodes[nodeOutside] = outsideState(s.ledger)
	topic := flow.NodeState{State: "up", Facts: []flow.Fact{
		flow.Count("partitions", int64(set.partitions), "%d partitions"),
		flow.Flag("path-cut", cut, "path from flowlab cut"),
		flow.Word("error", readErr, "%s").When(!cut),
	}}
	switch {
	case cut:
		topic.State = "unreachable"
	case readErr != "":
		topic.State = "unknown"
	}
	nodes["orders"] = topic

	owners := make(map[int32][]string) // live owners
	// Partitions a crashed member holds until the broker drops it.
	held, orphans, left := s.crashedHeld(now)
	session := time.Duration(set.sessionTimeout) * time.Second
	g := group{held: held, left: left, session: set.sessionTimeout}
	for i, m := range members {
		if m == nil {
			continue // a slot not started is not drawn
		}
		g.started++
		nodes[m.id] = m.status(now, session, set.processingMS[i])
		if m.isCrashed() {
			continue
		}
		g.live++
		for _, p := range m.ownedList() {
			owners[p] = append(owners[p], m.id)
		}
	}
	behind := false
	for p := range int32(set.partitions) {
		ns := partitionState(p, parts, s.reachedAt(p), endsAgo, owners[p], orphans[p])
		nodes[partitionID(p)] = ns
		behind = behind || ns.State == "behind"
		if v, ok := ns.Value("unprocessed"); ok {
			g.backlog += v.(int64)
		}
	}
	// Eventual consistency, seen: records waited, and are being processed.
	g.catchingUp = behind && draining
	state, facts := s.rebalances.status(now, g)
	nodes["inventory"] = flow.NodeState{State: state, Facts: facts}
	// The nodes a slow change is shown on (change.node).
	for _, id := range []string{"order-service", "orders", "inventory"} {
		ns := nodes[id]
		ns.Facts = append(ns.Facts, s.changes.facts(id)...)
		nodes[id] = ns
	}
	return nodes
}

// nodeWord is a node's state word.
type nodeWord struct{ node, state string }

// serviceWords appends the state words of order-service, the outside clients
// and the started members, as nodeStates draws them, to words: the nodes
// whose state changes watch tells. The group's (inventory's) and the topic's
// changes are told where they happen, with more to say; partitions flip
// between caught up and behind every second under load, which their badges
// show without filling the event log.
func (s *Scenario) serviceWords(now time.Time, words []nodeWord) []nodeWord {
	s.mu.Lock()
	rate, o, burst := s.set.rate, s.producer, s.burst
	members := s.members
	s.mu.Unlock()
	words = append(words, nodeWord{"order-service", producerWord(o, rate, burst)}, nodeWord{nodeOutside, outsideWord(s.ledger.externalSeen())})
	for _, m := range members {
		if m != nil { // a slot not started is not drawn
			words = append(words, nodeWord{m.id, m.word(now)})
		}
	}
	return words
}

// producerWord is order-service's state word; o is nil while it is stopped.
func producerWord(o *orderService, rate, burst int) string {
	if o == nil {
		return "stopped"
	}
	return o.status(rate, burst).state
}

// producerState is order-service's node; o is nil while it is stopped, and
// then nothing is drawn.
func producerState(o *orderService, set settings, rate float64, burst int, last lastBurst) flow.NodeState {
	ps := producerStatus{state: "stopped", timeout: time.Duration(set.deliverySecs) * time.Second}
	on := o != nil
	if on {
		ps = o.status(set.rate, burst)
	}
	// The formats made with fmt are made only for badges that show: Stats
	// draws this node at every frame, ten times a second.
	var burstBadge, noAnswerBadge, sendingBadge string
	if last.n > 0 {
		burstBadge = burstFormat(last)
	}
	if ps.err != "" {
		noAnswerBadge = fmt.Sprintf("no answer for %%.0f s; a record fails after %.0f s", ps.timeout.Seconds())
	}
	if on {
		sendingBadge = fmt.Sprintf("sending %%.0f/s of %d/s", set.rate)
	}
	return flow.NodeState{State: ps.state, Facts: []flow.Fact{
		flow.Count("buffered", ps.buffered, "buffered %d").When(on),
		flow.Count("unsent", int64(burst), "burst: %d to send").When(on && burst > 0),
		// The burst's size and duration, its rate on the next line: "burst
		// 1000: 2.3 s", "burst rate 435/s"; short, as the node is narrow.
		flow.Count("last-burst", int64(last.n), burstBadge),
		flow.Measure("last-burst-s", last.took.Seconds(), ""),
		flow.Measure("last-burst-per-s", last.rate(), "burst rate %.0f/s").When(last.n > 0),
		flow.Word("error", ps.err, "retrying: %s"),
		// One badge says how long there has been no answer and how long
		// kgo keeps trying: the timeout is its format's, and a fact apart.
		flow.Measure("no-answer-s", ps.silent.Seconds(), noAnswerBadge),
		flow.Count("delivery-timeout-s", int64(ps.timeout/time.Second), ""),
		flow.Measure("sending-per-s", rate, sendingBadge),
		flow.Count("rate-per-s", int64(set.rate), ""),
		flow.Word("acks", set.acks, "acks %s").When(on),
		flow.Flag("flush-each", set.flushEach, "flush after every record").When(on),
		flow.Count("linger-ms", int64(set.lingerMS), "linger %d ms").When(on && !set.flushEach),
	}}
}

// burstFormat is the badge of the last burst's size and duration, in ms
// below a second.
func burstFormat(b lastBurst) string {
	took := fmt.Sprintf("%.1f s", b.took.Seconds())
	if b.took < time.Second {
		took = fmt.Sprintf("%d ms", b.took.Milliseconds())
	}
	return "burst %d: " + took
}

func (b lastBurst) rate() float64 {
	if b.took <= 0 {
		return 0
	}
	return float64(b.n) / b.took.Seconds()
}

func outsideState(l *ledger) flow.NodeState {
	n := l.externalSeen()
	return flow.NodeState{State: outsideWord(n), Facts: []flow.Fact{flow.Count("records", n, "%d records").When(n > 0)}}
}

// outsideWord is the outside clients' state word when n of their records
// were seen.
func outsideWord(n int64) string {
	if n == 0 {
		return "none seen"
	}
	return "seen"
}

// partitionState is what partition p says: its offsets, its lag as Kafka
// defines it, and apart from it the records not yet processed, which alone
// make it behind. reached is the offset after its newest processed record,
// endsAgo every partition's end behindAfter ago.
func partitionState(p int32, parts []partitionRead, reached int64, endsAgo []int64, owners []string, orphan string) flow.NodeState {
	var st flow.NodeState
	r, read := partitionRead{committed: -1}, int(p) < len(parts)
	var unprocessed int64
	if read {
		r = parts[p]
		unprocessed = r.unprocessed(reached)
		st.State = "caught up"
		// Behind: records that were in the log behindAfter ago are still
		// not processed.
		if int(p) < len(endsAgo) && endsAgo[p] > max(reached, r.committed, r.start) {
			st.State = "behind"
		}
	}
	committed := flow.Count("committed", r.committed, "commit %d")
	if r.committed < 0 {
		committed.Badge = "commit none" // Kafka's -1, in words
	}
	pending := r.lag() - unprocessed
	st.Facts = []flow.Fact{
		flow.Count("log-end", r.end, "end %d").When(read),
		committed.When(read),
		flow.Count("lag", r.lag(), "lag %d").When(read),
		// Not drawn: the state word tells lag still to process (behind)
		// from lag only waiting for its commit (caught up), and the
		// partition's card must stay narrow beside its member.
		flow.Count("unprocessed", unprocessed, ""),
		flow.Count("commit-pending", pending, ""),
		flow.Count("log-start", r.start, "starts at %d: older records deleted").When(r.start > 0),
	}
	switch {
	case len(owners) > 0: // the edges to the owners show who holds it
	case orphan != "":
		st.State = "orphaned"
		// The edge to the crashed member shows who holds it.
	default:
		st.State = "unassigned"
	}
	return st
}

// status is what the member's node says. A crashed member shows only the
// work it lost and when the group will notice; it still sends every fact.
func (m *member) status(now time.Time, session time.Duration, processingMS int) flow.NodeState {
	owned := m.ownedList()
	m.mu.Lock()
	defer m.mu.Unlock()
	crashed := m.crashed.Load()
	var left time.Duration // until the group notices the crash
	if crashed && !m.crashedAt.IsZero() {
		left = max(0, session-now.Sub(m.crashedAt))
	}
	assigned := make([]int, 0, len(owned))
	if !crashed || left > 0 { // the group counts a crashed member's partitions its own until then
		for _, p := range owned {
			assigned = append(assigned, int(p))
		}
	}
	uncommitted, format := m.uncommittedLocked(), "uncommitted %d"
	if crashed {
		uncommitted, format = m.lostWork, "%d done, never committed"
	}
	errText := ""
	if now.Sub(m.errAt) < 5*time.Second {
		errText = m.errText
	}
	ns := flow.NodeState{State: "crashed", Facts: []flow.Fact{
		assignedFact(assigned).When(!crashed),
		flow.Count("processed", m.processed, "done %d").When(!crashed),
		flow.Count("uncommitted", uncommitted, format),
		flow.Count("processing-ms", int64(processingMS), "%d ms").When(!crashed),
		flow.Word("error", errText, "%s").When(!crashed),
		flow.Measure("noticed-in-s", left.Seconds(), "noticed in %.0f s").When(left > 0),
	}}
	if crashed {
		return ns
	}
	ns.State = m.liveWord(now, len(assigned))
	return ns
}

// word is the member's state word, as status draws it.
func (m *member) word(now time.Time) string {
	m.mu.Lock()
	owned := len(m.owned)
	m.mu.Unlock()
	if m.crashed.Load() {
		return "crashed"
	}
	return m.liveWord(now, owned)
}

// liveWord is the state word of a member that has not crashed and owns that
// many partitions.
func (m *member) liveWord(now time.Time, owned int) string {
	id, _ := m.cl.GroupMetadata()
	switch {
	case m.net.unreachable(now):
		return "unreachable"
	case id == "":
		return "joining"
	case owned == 0:
		return "idle"
	}
	return "consuming"
}

// assignedFact is a member's partitions, drawn as the diagram names them
// ("p0 p2") rather than as a list.
func assignedFact(ps []int) flow.Fact {
	f := flow.Numbers("assigned", ps, "")
	f.Badge = "no partitions"
	if len(ps) > 0 {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = partitionID(int32(p))
		}
		f.Badge = strings.Join(ids, " ")
	}
	return f
}
