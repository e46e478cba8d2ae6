package asyncmsg

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"flowlab/flow"
)

// rebalances notices when the group's assignment moves and draws each
// rebalance once it is over: the assignment before and after, and how long
// it took, from the moment something happened (a member joined, left or
// crashed) to the moment every partition has one live owner again.
type rebalances struct {
	s *Scenario

	mu     sync.Mutex
	active bool
	reason string
	since  time.Time
	before assignment
	// needGen, when not -1, is a generation every member must pass before
	// the rebalance counts as over: right after a member crashes the old
	// assignment still covers every partition, yet the group has not moved.
	needGen int32
	holds   int        // operations that stop and start members in progress
	stable  assignment // the assignment after the last rebalance
	count   int
	took    time.Duration
	// waited is the crashed members this rebalance waited for, until the
	// broker dropped them when their session timed out.
	waited []string
}

// assignment is which partitions each live member holds.
type assignment map[string][]int32

func newRebalances(s *Scenario) *rebalances {
	return &rebalances{s: s, needGen: -1, stable: assignment{}}
}

// begin starts (or extends) a rebalance caused by what the learner did.
func (r *rebalances) begin(reason string, needNewGen bool) {
	_, gen, _ := r.s.assignment()
	r.mu.Lock()
	if !r.active {
		r.active, r.since, r.before, r.reason, r.needGen, r.waited = true, time.Now(), r.stable, reason, -1, nil
	} else {
		r.reason += "; " + reason
	}
	if needNewGen {
		r.needGen = max(r.needGen, gen)
	}
	why := r.reason
	r.mu.Unlock()
	r.s.state("inventory", "rebalancing", why)
}

// hold keeps a rebalance open while an operation stops and starts members,
// so the moment with no members is not taken for its end.
func (r *rebalances) hold() (release func()) {
	r.mu.Lock()
	r.holds++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.holds--
		r.mu.Unlock()
	}
}

// check ends the rebalance in progress when the group is whole again, and
// starts one when the assignment moved without the learner doing anything.
//
// A crashed member stays in the group until the broker drops it when its
// session times out: a rebalance that needs its partitions waits that long,
// and one that leaves no live member ends only then, with the group empty.
func (r *rebalances) check(now time.Time) {
	asg, gen, settled := r.s.assignment()
	held, _, _ := r.s.crashedHeld(now)
	partitions := r.s.partitionCount()
	r.mu.Lock()
	if r.holds > 0 {
		r.mu.Unlock()
		return
	}
	if !r.active {
		if asg.equal(r.stable) {
			r.mu.Unlock()
			return
		}
		r.active, r.since, r.before, r.reason, r.needGen, r.waited = true, now, r.stable, "the assignment moved", -1, nil
		if len(r.stable) == 0 {
			r.reason = "the group formed"
		}
	}
	for _, id := range held {
		if !slices.Contains(r.waited, id) {
			r.waited = append(r.waited, id)
		}
	}
	if len(held) > 0 && len(asg) == 0 ||
		len(asg) > 0 && (!settled || gen <= r.needGen || !asg.covers(partitions)) {
		r.mu.Unlock()
		return
	}
	r.active, r.needGen, r.stable = false, -1, asg
	r.count++
	r.took = now.Sub(r.since)
	took := r.took
	after, state, note := asg.String(), "stable", fmt.Sprintf("rebalanced in %.1f s", took.Seconds())
	if len(asg) == 0 {
		after, state, note = "no members: partitions unassigned", "empty", "no members: nothing consumes, records wait in the log"
	}
	payload := "before: " + r.before.String() + " → after: " + after
	if len(r.waited) > 0 {
		slices.SortFunc(r.waited, byMember)
		payload += fmt.Sprintf(" (the broker dropped crashed %s after the session timeout (%d s))", strings.Join(r.waited, " "), r.s.sessionSecs())
	}
	done := flow.Event{Kind: flow.KindRebalance, From: "inventory", Detail: flow.Detail{
		Outcome:   r.reason,
		Payload:   payload,
		LatencyMS: ms(took),
	}}
	r.mu.Unlock()
	r.s.cfg.Emit.Emit(done)
	r.s.state("inventory", state, note)
}

// ghost is a crashed member that flowlab forgot (restarted, or removed) and
// that the broker still counts in the group until its session times out.
type ghost struct {
	id    string
	until time.Time
	owned []int32
}

// crashedHeld lists the crashed members the broker still counts in the
// group, in order, which of them holds each of their partitions, and how
// long until the broker drops the last of them.
func (s *Scenario) crashedHeld(now time.Time) (ids []string, orphans map[int32]string, left time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	session := time.Duration(s.set.sessionTimeout) * time.Second
	orphans = make(map[int32]string)
	hold := func(id string, until time.Time, owned []int32) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		left = max(left, until.Sub(now))
		for _, p := range owned {
			orphans[p] = id
		}
	}
	s.ghosts = slices.DeleteFunc(s.ghosts, func(g ghost) bool { return !now.Before(g.until) })
	for _, g := range s.ghosts {
		hold(g.id, g.until, g.owned)
	}
	for _, m := range s.members {
		if m == nil || !m.isCrashed() {
			continue
		}
		if at := m.crashTime(); !at.IsZero() && now.Before(at.Add(session)) {
			hold(m.id, at.Add(session), m.ownedList())
		}
	}
	slices.SortFunc(ids, byMember)
	return ids, orphans, left
}

func (s *Scenario) sessionSecs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.sessionTimeout
}

// done is how many rebalances ended.
func (r *rebalances) done() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// group is what the inventory node is drawn from besides its rebalances.
type group struct {
	live    int      // running members
	started int      // member slots started, crashed ones included
	held    []string // crashed members the broker still counts
	left    time.Duration
	session int // seconds
	// backlog is the records not yet processed in every partition, and
	// catchingUp whether live members are working it down while some
	// partition is behind.
	backlog    int64
	catchingUp bool
}

// status is what the inventory node shows: the group's state word and
// facts. With no live member the group is empty, whatever rebalance is
// pending: nothing consumes. Members stopped to be started again (a change)
// leave it rebalancing, not empty.
func (r *rebalances) status(now time.Time, g group) (string, []flow.Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state, reason, sofar := "stable", "", 0.0
	if r.active {
		state, reason, sofar = "rebalancing", r.reason, now.Sub(r.since).Seconds()
	}
	why := ""
	switch {
	case g.live > 0 || r.holds > 0:
	case g.started == 0:
		why = "the article's Consumer copies its producer"
	default:
		why = "every member crashed: restart one"
	}
	if why != "" {
		state = "empty"
	}
	held := strings.Join(g.held, " ")
	// Two short lines, as the node is no wider than the diagram: who is
	// waited for, then how long the session timeout still holds them.
	heldFormat := "waiting for crashed %s to time out"
	if state == "empty" {
		heldFormat = "crashed %s hold the partitions"
	}
	members := flow.Count("members", int64(g.live), "")
	if len(g.held) == 0 {
		members.Badge = "no members: partitions unassigned"
	}
	members = members.When(state == "empty")
	catching := int64(0)
	if g.catchingUp && g.live > 0 {
		catching = g.backlog
	}
	// The formats made with fmt are made only for badges that show: Stats
	// draws this node at every frame, ten times a second.
	var sessionBadge, reasonBadge string
	if held != "" {
		sessionBadge = fmt.Sprintf("session timeout %d s: %%.0f s left", g.session)
	}
	if reason != "" && held == "" {
		reasonBadge = fmt.Sprintf("%%s, %.0f s so far", sofar)
	}
	return state, []flow.Fact{
		members,
		flow.Word("no-members-why", why, "%s"),
		flow.Word("waiting-for", held, heldFormat),
		flow.Measure("session-left-s", g.left.Seconds(), sessionBadge),
		flow.Count("session-timeout-s", int64(g.session), ""),
		flow.Count("catching-up", catching, "catching up: %d left — eventual consistency").When(catching > 0),
		// "rebalances 3, last took 0.6 s" on one line: the group's node
		// stands above the members, with room for few lines.
		flow.Count("rebalances", int64(r.count), fmt.Sprintf("rebalances %%d, last took %.1f s", r.took.Seconds())),
		flow.Measure("last-rebalance-s", r.took.Seconds(), ""),
		// "m4 joined, 3 s so far" reads as one: the reason's badge carries
		// the time, which is a fact apart.
		// Drawn only when the wait is not for a crashed member, which the
		// lines above already tell.
		flow.Word("rebalance-reason", reason, reasonBadge),
		flow.Measure("rebalancing-s", sofar, ""),
	}
}

// assignment returns the live members' partitions, their newest generation,
// and whether the group has settled: every live member joined and all are in
// the same generation.
func (s *Scenario) assignment() (asg assignment, gen int32, settled bool) {
	s.mu.Lock()
	live := make([]*member, 0, maxMembers)
	for _, m := range s.members {
		if m != nil && !m.isCrashed() {
			live = append(live, m)
		}
	}
	s.mu.Unlock()
	asg, gen, settled = assignment{}, -1, true
	for i, m := range live {
		id, g := m.cl.GroupMetadata()
		if id == "" || (i > 0 && g != gen) {
			settled = false
		}
		gen = max(gen, g)
		asg[m.id] = m.ownedList()
	}
	return asg, gen, settled
}

func (s *Scenario) partitionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set.partitions
}

// covers reports whether every partition has exactly one owner.
func (a assignment) covers(partitions int) bool {
	seen := make([]int, partitions)
	for _, ps := range a {
		for _, p := range ps {
			if int(p) >= partitions {
				return false
			}
			seen[p]++
		}
	}
	return !slices.ContainsFunc(seen, func(n int) bool { return n != 1 })
}

func (a assignment) equal(b assignment) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}

// String reads "m1 p0 p1 · m2 p2 · m3 —" with members in order.
func (a assignment) String() string {
	if len(a) == 0 {
		return "no members"
	}
	var parts []string
	for _, id := range slices.SortedFunc(maps.Keys(a), byMember) {
		ps := []string{id}
		for _, p := range a[id] {
			ps = append(ps, partitionID(p))
		}
		if len(a[id]) == 0 {
			ps = append(ps, "idle")
		}
		parts = append(parts, strings.Join(ps, " "))
	}
	return strings.Join(parts, " · ")
}

// byMember orders m2 before m10.
func byMember(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// watch checks the group and order-service every 50 ms and tells the view
// when a rebalance ends or a service's state word changes.
func (s *Scenario) watch(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := make(map[string]string)
	var words []nodeWord
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.rebalances.check(now)
			words = s.tellChanges(now, last, words[:0])
		}
	}
}

// tellChanges tells the view of each service whose state word is not the
// one in last, and keeps the new words there; words is room for them, handed
// back. It compares only state words, which cost little to find: a node's
// badges, which go with what it tells, are built only when its word changed.
func (s *Scenario) tellChanges(now time.Time, last map[string]string, words []nodeWord) []nodeWord {
	words = s.serviceWords(now, words)
	var nodes map[string]flow.NodeState
	for _, w := range words {
		// A crash is told where it happens, with more to say.
		was, seen := last[w.node]
		last[w.node] = w.state
		if w.state == "crashed" || !seen || was == w.state {
			continue
		}
		if nodes == nil {
			nodes = s.nodeStates(now)
		}
		s.state(w.node, w.state, strings.Join(nodes[w.node].Badges(), ", "))
	}
	return words
}
