package asyncmsg

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"flowlab/flow"
)

const (
	maxPartitions  = 12
	maxMembers     = 8
	defaultMembers = 3
	maxRate        = 2000
	burstSize      = 1000 // order events (not orders) one press of send-1000 sends
)

// Commit modes of the inventory members.
const (
	commitAuto  = "auto"             // kgo's autocommit, every 5 s
	commitAfter = "after-processing" // commit what was processed, then poll again
)

// settings are the current knob values.
type settings struct {
	rate           int // order events per second
	acks           string
	flushEach      bool // flush after every record, as in the article
	lingerMS       int
	deliverySecs   int // the producer's delivery timeout (Kafka's delivery.timeout.ms)
	latencyMS      int // added on the path to the broker
	partitions     int
	commitMode     string
	idempotent     bool
	sessionTimeout int // seconds
	members        int // member slots started, crashed ones included
	processingMS   [maxMembers]int
	replayPart     string // "all" or "p3"
	replayOffset   int
	replayMinutes  int
}

func defaultSettings() settings {
	s := settings{
		rate:           10,
		acks:           "all",
		flushEach:      true,
		deliverySecs:   120, // Kafka's default: a minute's outage costs nothing
		partitions:     3,
		commitMode:     commitAuto,
		sessionTimeout: 10,
		members:        defaultMembers,
		replayPart:     "all",
		replayMinutes:  5,
		// A round trip within one data centre: on loopback the embedded
		// broker answers in microseconds, which hides what a flush after
		// every record costs on any real network.
		latencyMS: 1,
	}
	for i := range s.processingMS {
		s.processingMS[i] = 20
	}
	return s
}

// autoCommitEvery is kgo's and Kafka's default auto.commit.interval.ms: the
// window of work a crashed member does again in auto mode.
const autoCommitEvery = 5 * time.Second

// Knobs declares every knob with its current value, grouped by the node each
// belongs to.
func (s *Scenario) Knobs() []flow.Knob {
	s.mu.Lock()
	set := s.set
	s.mu.Unlock()

	ks := []flow.Knob{
		{Name: "rate", Group: "order-service", Label: "Order events per second", Type: flow.IntKnob,
			Min: 0, Max: maxRate, Step: 10, Unit: "events/s", Value: set.rate,
			Help: "Each order gets three events (placed, paid, shipped), keyed by its order id."},
		{Name: "send-1000", Group: "order-service", Label: "Send 1000 order events at once", Type: flow.ActionKnob,
			Help: "Hands 1000 order events (placed, paid and shipped events of about 333 orders) to the producer as fast as it takes them, beside the rate and above its 2000/s cap. Batching sends them in a few requests within milliseconds; flushing after every record waits for the broker 1000 times — compare how long the burst takes. The producer holds at most 10,000 waiting records: a press whose events would not fit beside those waiting and those of earlier presses is refused, and says so."},
		{Name: "acks", Group: "order-service", Label: "Producer acks", Type: flow.ChoiceKnob,
			Choices: []flow.Choice{
				{Value: "all", Label: "all in-sync replicas"},
				{Value: "leader", Label: "leader only"},
				{Value: "none", Label: "none: fire and forget"},
			}, Value: set.acks,
			Help: "What the broker must do before it acknowledges a record. With none, no acknowledgement ever comes back and a lost record goes unnoticed."},
		{Name: "flush-each", Group: "order-service", Label: "Flush after every record", Type: flow.BoolKnob,
			Value: set.flushEach,
			Help:  "As in the article: p.produce() then p.flush(), so each record waits for the broker before the next is sent. Turn it off to batch, and compare the send rate."},
		{Name: "linger", Group: "order-service", Label: "Batch linger", Type: flow.IntKnob,
			Min: 1, Max: 1000, Unit: "ms", Off: "send at once", Value: set.lingerMS,
			Help: "How long the producer waits to fill a batch when it does not flush after every record."},
		{Name: "delivery-timeout", Group: "order-service", Label: "Delivery timeout", Type: flow.IntKnob,
			Min: 1, Max: 600, Unit: "s", Value: set.deliverySecs,
			Help: "Kafka's delivery.timeout.ms: how long the producer keeps a record and retries it through an outage before it fails it — and with it every record waiting for the same partition. Kafka's default is 120 s. Changing it replaces the producer: records still waiting then fail, counted."},
		{Name: "cut-path", Group: "orders", Label: "Cut the path to the broker", Type: flow.ActionKnob,
			Help: "Closes every connection between flowlab's clients and Kafka and refuses new ones. The producer keeps records in its buffer (10,000 at most: more are refused, counted) and retries them until the delivery timeout, then fails them, counted; members stop fetching. The broker keeps running for everyone else."},
		{Name: "restore-path", Group: "orders", Label: "Restore the path", Type: flow.ActionKnob},
		{Name: "path-latency", Group: "orders", Label: "Network latency to the broker", Type: flow.IntKnob,
			Min: 1, Max: 1000, Unit: "ms", Off: "none", Value: set.latencyMS,
			Help: "Delays every answer from the broker to flowlab's clients. Flushing after every record pays it once per record; batching pays it once per batch. It starts at 1 ms, about a round trip within one data centre: the embedded broker on this machine answers in microseconds, which would hide the cost of the article's flush() (a 1000-event burst: about 2 s flushed after every record, a few ms batched, at 1 ms)."},
		{Name: "partitions", Group: "orders", Label: "Partitions", Type: flow.IntKnob,
			Min: 1, Max: maxPartitions, Value: set.partitions,
			Help: "More partitions are added in place. Kafka cannot remove partitions: fewer means the topic is deleted and created again, which throws away every record in it and the group's committed offsets."},
		{Name: "members", Group: "inventory", Label: "Members", Type: flow.IntKnob,
			Min: 0, Max: maxMembers, Value: set.members,
			Help: "How many inventory instances run in the group, crashed ones included. 0 is the article's setting: its Consumer section is a copy of its producer, so nothing consumes and records pile up in the log, kept, until a member joins."},
		{Name: "add-member", Group: "inventory", Label: "Add a member", Type: flow.ActionKnob,
			Help: "Starts another inventory instance in the group; the group rebalances. Members beyond the partition count get nothing to do."},
		{Name: "remove-member", Group: "inventory", Label: "Remove a member", Type: flow.ActionKnob,
			Help: "Stops the newest member cleanly: it commits and leaves, so the group rebalances at once. The last member stays: crash it to see a group with none."},
		{Name: "crash-all", Group: "inventory", Label: "Crash every member", Type: flow.ActionKnob,
			Help: "No consumer at all, as in the article, whose Kafka \"Consumer\" is a copy of its producer: records wait in the log, none lost. Restart a member and it catches up."},
		{Name: "commit-mode", Group: "inventory", Label: "Commit", Type: flow.ChoiceKnob,
			Choices: []flow.Choice{
				{Value: commitAuto, Label: "auto-commit every 5 s"},
				{Value: commitAfter, Label: "after processing"},
			}, Value: set.commitMode,
			Help: "Auto-commit may leave up to 5 s of processed records uncommitted when a member crashes. Changing it restarts the members (a rebalance)."},
		{Name: "idempotent", Group: "inventory", Label: "Idempotent consumer", Type: flow.BoolKnob,
			Value: set.idempotent,
			Help:  "Remember which order events were processed and skip the side effect (reserving stock) when one comes again."},
		{Name: "session-timeout", Group: "inventory", Label: "Session timeout", Type: flow.IntKnob,
			Min: 1, Max: 45, Unit: "s", Value: set.sessionTimeout,
			Help: "How long the group waits for a member that stopped heartbeating before it gives that member's partitions to others: a crashed member's partitions stall this long. Kafka's default is 45 s and a real broker refuses less than its group.min.session.timeout.ms (6 s by default). Changing it restarts the members."},
		{Name: "replay-partition", Group: "inventory", Label: "Replay which partitions", Type: flow.ChoiceKnob,
			Choices: partitionChoices(), Value: set.replayPart,
			Help: "The partitions the replay buttons and values below reset."},
		{Name: "replay-earliest", Group: "inventory", Label: "Replay from the earliest offset", Type: flow.ActionKnob,
			Help: "Stops the members, resets the group's committed offsets to the start of the log, and starts them again: everything is processed again."},
		{Name: "replay-offset", Group: "inventory", Label: "Replay from offset", Type: flow.IntKnob,
			Min: 0, Max: math.MaxInt32, Value: set.replayOffset,
			Help: "Setting it resets the group to this offset in each chosen partition. It must not be past a partition's end; an offset whose record the broker has deleted already (retention) replays from the first record left, and the log says so."},
		{Name: "replay-minutes-ago", Group: "inventory", Label: "Replay from minutes ago", Type: flow.IntKnob,
			Min: 1, Max: 7 * 24 * 60, Unit: "minutes ago", Value: set.replayMinutes,
			Help: "Setting it resets the group to the first record written at or after that time. A time is given as minutes before now because a knob holds a number, not a date."},
	}
	for i := range maxMembers {
		id := memberID(i)
		ks = append(ks,
			flow.Knob{Name: id + "-processing", Group: id, Label: "Processing time", Type: flow.IntKnob,
				Min: 1, Max: 1000, Unit: "ms per record", Off: "instant", Value: set.processingMS[i],
				Help: "Slow a member down and its partitions' lag grows."},
			flow.Knob{Name: id + "-crash", Group: id, Label: "Crash", Type: flow.ActionKnob,
				Help: "The process dies at once: no commit, no goodbye to the group. Records it processed but did not commit are processed again by the next owner, once the session timeout passes."},
			flow.Knob{Name: id + "-restart", Group: id, Label: "Restart", Type: flow.ActionKnob,
				Help: "Starts a crashed member again; it joins as a new member."},
		)
	}
	return ks
}

func partitionChoices() []flow.Choice {
	cs := []flow.Choice{{Value: "all", Label: "all partitions"}}
	for p := range maxPartitions {
		cs = append(cs, flow.Choice{Value: partitionID(int32(p)), Label: "partition " + strconv.Itoa(p)})
	}
	return cs
}

// Presets are the article's setup and a reliable one.
func (s *Scenario) Presets() []flow.Preset {
	return []flow.Preset{
		{Name: "article", Label: "As in the article",
			Help: "Flush after every record and default acks, as the article's producer does, and no consumer at all: the article's \"Consumer\" is a copy of its producer, so records pile up in the log. Add a member to consume them: it gets auto-commit and Kafka's 45 s session timeout, the defaults the article's consumer would get.",
			Values: map[string]any{"flush-each": true, "acks": "all", "linger": 0, "members": 0,
				"commit-mode": commitAuto, "idempotent": false, "session-timeout": 45}},
		{Name: "reliable", Label: "Reliable",
			Help: "Batch with a short linger, wait for all replicas, retry a record through an outage for up to 2 minutes, commit only after processing and skip duplicates by order event id: a crash costs a few seconds, never a double reservation.",
			Values: map[string]any{"flush-each": false, "acks": "all", "linger": 5, "delivery-timeout": 120, "members": defaultMembers,
				"commit-mode": commitAfter, "idempotent": true, "session-timeout": 10}},
	}
}

// Set changes one knob. Values come checked by flow.Knob.Parse; what depends
// on the broker's state (offsets, members, partitions) is checked here, and an
// error means nothing changed. Set never waits on the broker holding ops: what
// must wait runs as a change (see changes.go), and the replays read offsets
// before they take ops.
func (s *Scenario) Set(knob string, value any) error {
	switch knob {
	case "replay-earliest":
		return s.replay(knob, nil, replayEarliest)
	case "replay-offset":
		n, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		return s.replay(knob, n, replayOffset(int64(n)))
	case "replay-minutes-ago":
		n, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		return s.replay(knob, n, replayTime(time.Now().Add(-time.Duration(n)*time.Minute)))
	}
	s.ops.Lock()
	defer s.ops.Unlock()

	if i, action, ok := memberKnob(knob); ok {
		return s.setMember(i, action, value)
	}
	switch knob {
	case "crash-all":
		return s.crashAll()
	case "rate":
		return setValue(s, knob, value, func(set *settings, n int) { set.rate = n })
	case "send-1000":
		return s.sendBurst(burstSize)
	case "acks":
		return setProducerOption(s, knob, value, func(set *settings, v string) { set.acks = v })
	case "flush-each":
		return setValue(s, knob, value, func(set *settings, b bool) { set.flushEach = b })
	case "linger":
		return setProducerOption(s, knob, value, func(set *settings, n int) { set.lingerMS = n })
	case "delivery-timeout":
		return setProducerOption(s, knob, value, func(set *settings, n int) { set.deliverySecs = n })
	case "idempotent":
		return setValue(s, knob, value, func(set *settings, b bool) { set.idempotent = b })
	case "replay-partition":
		v, err := flow.Typed[string](knob, value)
		if err != nil {
			return err
		}
		if _, err := replayPartitions(v, s.partitionCount()); err != nil {
			return err
		}
		return setValue(s, knob, v, func(set *settings, v string) { set.replayPart = v })
	case "commit-mode":
		return setMemberOption(s, knob, value, func(set *settings, v string) { set.commitMode = v })
	case "session-timeout":
		return setMemberOption(s, knob, value, func(set *settings, n int) { set.sessionTimeout = n })
	case "partitions":
		n, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		return s.setPartitions(n)
	case "path-latency":
		n, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		if rt, err := s.running(); err == nil {
			if err := rt.paths.SetLatency(n); err != nil {
				return flow.Errorf(flow.Unavailable, "could not change the latency: %v", err)
			}
		}
		return setValue(s, knob, n, func(set *settings, n int) { set.latencyMS = n })
	case "cut-path", "restore-path":
		rt, err := s.running()
		if err != nil {
			return err
		}
		return s.setPath(rt, knob == "cut-path")
	case "members":
		n, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		return s.setMembers(n)
	case "add-member":
		return s.addMember()
	case "remove-member":
		return s.removeMember()
	}
	return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), knob)
}

// setMember handles the per-member knobs: m3-processing, m3-crash, m3-restart.
func (s *Scenario) setMember(i int, action string, value any) error {
	if action == "processing" {
		return setValue(s, memberID(i)+"-"+action, value, func(set *settings, n int) { set.processingMS[i] = n })
	}
	rt, err := s.running()
	if err != nil {
		return err
	}
	if err := s.membersSteady(); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.members[i]
	s.mu.Unlock()
	switch {
	case action == "crash" && (m == nil || m.isCrashed()):
		return flow.Errorf(flow.Invalid, "%s is not running, so it cannot crash (running: %s)", memberID(i), s.liveMemberList())
	case action == "crash":
		s.rebalances.begin(memberID(i)+" crashed", true)
		s.crashMember(i)
		return nil
	case action == "restart" && (m == nil || !m.isCrashed()):
		return flow.Errorf(flow.Invalid, "%s has not crashed, so there is nothing to restart (crashed: %s)", memberID(i), s.crashedMemberList())
	}
	s.rebalances.begin(memberID(i)+" restarted", true)
	waitGone(s.detachMember(i)) // forget the crashed one, already gone
	return s.startMember(rt, i)
}

// crashAll crashes every running member at once, leaving the group with no
// consumer. Its caller holds ops.
func (s *Scenario) crashAll() error {
	if _, err := s.running(); err != nil {
		return err
	}
	if err := s.membersSteady(); err != nil {
		return err
	}
	var live []int
	s.mu.Lock()
	for i, m := range s.members {
		if m != nil && !m.isCrashed() {
			live = append(live, i)
		}
	}
	s.mu.Unlock()
	if len(live) == 0 {
		return flow.Errorf(flow.Invalid, "no member is running, so none can crash (crashed: %s)", s.crashedMemberList())
	}
	s.rebalances.begin("every member crashed", true)
	for _, i := range live {
		s.crashMember(i)
	}
	return nil
}

// setProducerOption changes an option the producer client is built with, so
// the producer is replaced by one built with the new value, as a change: its
// last flush waits on the broker.
func setProducerOption[T any](s *Scenario, knob string, value any, apply func(*settings, T)) error {
	if err := setValue(s, knob, value, apply); err != nil {
		return err
	}
	if _, err := s.running(); err != nil {
		return nil // the value is kept for the next Run
	}
	s.changes.add(&change{node: "order-service", kind: producerKind, what: knob + " changed",
		run: func(ctx context.Context, rt *runtime, _ string) error {
			s.stopProducer(ctx)
			if ctx.Err() != nil {
				return nil // shutting down
			}
			s.mu.Lock()
			set := s.set
			s.mu.Unlock()
			return s.startProducer(rt, set)
		}})
	return nil
}

// setMemberOption changes an option the members' clients are built with, so
// the running members are stopped cleanly and started again with it, as a
// change.
func setMemberOption[T any](s *Scenario, knob string, value any, apply func(*settings, T)) error {
	if err := setValue(s, knob, value, apply); err != nil {
		return err
	}
	if _, err := s.running(); err != nil {
		return nil
	}
	s.changes.add(&change{node: "inventory", kind: restartKind, what: knob + " changed",
		run: func(ctx context.Context, rt *runtime, what string) error {
			return s.restartMembers(ctx, rt, what, func() error { return nil })
		}})
	return nil
}

// setValue stores a plain value and tells the view.
func setValue[T any](s *Scenario, knob string, value any, apply func(*settings, T)) error {
	v, err := flow.Typed[T](knob, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	apply(&s.set, v)
	s.mu.Unlock()
	s.knobChanged(knob, v)
	return nil
}

func (s *Scenario) knobChanged(knob string, v any) {
	s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, Detail: flow.Detail{Knob: knob, Value: v}})
}

// memberKnob splits "m3-crash" into member index 2 and "crash".
func memberKnob(knob string) (int, string, bool) {
	id, action, ok := strings.Cut(knob, "-")
	if !ok || len(id) < 2 || id[0] != 'm' {
		return 0, "", false
	}
	n, err := strconv.Atoi(id[1:])
	if err != nil || n < 1 || n > maxMembers {
		return 0, "", false
	}
	switch action {
	case "processing", "crash", "restart":
		return n - 1, action, true
	}
	return 0, "", false
}

func memberID(i int) string { return "m" + strconv.Itoa(i+1) }

// partitionID names partition p, without allocating: three hops of every
// record carry one.
func partitionID(p int32) string {
	if p >= 0 && p < maxPartitions {
		return partitionIDs[p]
	}
	return "p" + strconv.Itoa(int(p))
}

var partitionIDs = func() (ids [maxPartitions]string) {
	for p := range ids {
		ids[p] = "p" + strconv.Itoa(p)
	}
	return ids
}()
