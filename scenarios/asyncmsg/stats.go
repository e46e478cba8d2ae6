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

// lag is how many records the group has still to process in the partition:
// those deleted (retention) before it got to them are not there to process.
func (p partitionRead) lag() int64 {
	return max(0, p.end-max(p.committed, p.start))
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

		s.mu.Lock()
		if err != nil {
			s.readErr = "cannot read offsets: " + err.Error()
		} else {
			s.parts, s.readErr = parts, ""
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
	members := s.members
	cut := s.rt != nil && s.rt.paths.IsCut()
	s.mu.Unlock()

	nodes := make(map[string]flow.NodeState, 4+maxPartitions+maxMembers)
	nodes["order-service"] = producerState(o, set, rate, burst)
	nodes[nodeOutside] = outsideState(s.ledger)
	topic := flow.NodeState{State: "up", Badges: []string{fmt.Sprintf("%d partitions", set.partitions)}}
	switch {
	case cut:
		topic.State = "unreachable"
		topic.Badges = append(topic.Badges, "path from flowlab cut")
	case readErr != "":
		topic.State = "unknown"
		topic.Badges = append(topic.Badges, readErr)
	}
	nodes["orders"] = topic

	owners := make(map[int32][]string) // live owners
	orphans := make(map[int32]string)  // partitions a crashed member held
	session := time.Duration(set.sessionTimeout) * time.Second
	for i, m := range members {
		if m == nil {
			continue // a slot not started is not drawn
		}
		st := m.status(now, session, set.processingMS[i])
		nodes[m.id] = st
		crashed := m.isCrashed()
		if crashed && !m.holdsAfterCrash(now, session) {
			continue
		}
		for _, p := range m.ownedList() {
			if crashed {
				orphans[p] = m.id
			} else {
				owners[p] = append(owners[p], m.id)
			}
		}
	}
	for p := range int32(set.partitions) {
		nodes[partitionID(p)] = partitionState(p, parts, owners[p], orphans[p])
	}
	state, badges := s.rebalances.status(now)
	nodes["inventory"] = flow.NodeState{State: state, Badges: badges}
	s.changes.badges(nodes)
	return nodes
}

func producerState(o *orderService, set settings, rate float64, burst int) flow.NodeState {
	if o == nil {
		return flow.NodeState{State: "stopped"}
	}
	state, badges := o.state(set.rate, burst)
	badges = append(badges, fmt.Sprintf("sending %.0f/s of %d/s", rate, set.rate), "acks "+set.acks)
	if set.flushEach {
		badges = append(badges, "flush after every record")
	} else {
		badges = append(badges, fmt.Sprintf("linger %d ms", set.lingerMS))
	}
	return flow.NodeState{State: state, Badges: badges}
}

func outsideState(l *ledger) flow.NodeState {
	l.mu.Lock()
	n := l.external
	l.mu.Unlock()
	if n == 0 {
		return flow.NodeState{State: "none seen"}
	}
	return flow.NodeState{State: "seen", Badges: []string{fmt.Sprintf("%d records", n)}}
}

func partitionState(p int32, parts []partitionRead, owners []string, orphan string) flow.NodeState {
	var st flow.NodeState
	if int(p) < len(parts) {
		r := parts[p]
		committed := "none"
		if r.committed >= 0 {
			committed = fmt.Sprint(r.committed)
		}
		st.Badges = []string{fmt.Sprintf("end %d", r.end), "commit " + committed, fmt.Sprintf("lag %d", r.lag())}
		if r.start > 0 {
			st.Badges = append(st.Badges, fmt.Sprintf("starts at %d: older records deleted", r.start))
		}
		st.State = "caught up"
		if r.lag() > 0 {
			st.State = "behind"
		}
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

// status is what the member's node says.
func (m *member) status(now time.Time, session time.Duration, processingMS int) flow.NodeState {
	owned := m.ownedList()
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]string, 0, len(owned))
	for _, p := range owned {
		ps = append(ps, partitionID(p))
	}
	if m.crashed.Load() {
		b := []string{fmt.Sprintf("%d done, never committed", m.lostWork)}
		if left := session - now.Sub(m.crashedAt); left > 0 && !m.crashedAt.IsZero() {
			b = append(b, fmt.Sprintf("noticed in %.0f s", left.Seconds()))
		}
		return flow.NodeState{State: "crashed", Badges: b}
	}
	b := []string{"no partitions", fmt.Sprintf("done %d", m.processed),
		fmt.Sprintf("uncommitted %d", m.uncommittedLocked()), fmt.Sprintf("%d ms", processingMS)}
	if len(ps) > 0 {
		b[0] = strings.Join(ps, " ")
	}
	if now.Sub(m.errAt) < 5*time.Second {
		b = append(b, m.errText)
	}
	id, _ := m.cl.GroupMetadata()
	errAt, _ := m.net.last()
	switch {
	case now.UnixNano()-errAt < int64(2*time.Second):
		return flow.NodeState{State: "unreachable", Badges: b}
	case id == "":
		return flow.NodeState{State: "joining", Badges: b}
	case len(ps) == 0:
		return flow.NodeState{State: "idle", Badges: b}
	}
	return flow.NodeState{State: "consuming", Badges: b}
}
