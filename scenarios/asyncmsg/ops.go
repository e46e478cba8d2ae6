package asyncmsg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"flowlab/flow"
)

// addMember starts the lowest free member slot.
func (s *Scenario) addMember() error {
	rt, err := s.running()
	if err != nil {
		return err
	}
	if err := s.membersSteady(); err != nil {
		return err
	}
	s.mu.Lock()
	free := -1
	for i, m := range s.members {
		if m == nil {
			free = i
			break
		}
	}
	s.mu.Unlock()
	if free < 0 {
		return flow.Errorf(flow.Invalid, "the group already has %d members (crashed ones included: restart those)", maxMembers)
	}
	s.rebalances.begin(memberID(free)+" joined", true)
	if err := s.startMember(rt, free); err != nil {
		return err
	}
	s.countMembers()
	return nil
}

// countMembers sets the members knob to the slots started, after a member
// was added or removed by its button.
func (s *Scenario) countMembers() {
	s.mu.Lock()
	n := 0
	for _, m := range s.members {
		if m != nil {
			n++
		}
	}
	s.set.members = n
	s.mu.Unlock()
	s.knobChanged("members", n)
}

// setMembers has the group run n members, as a change: a preset that also
// restarts the members then does both in the order asked, and is never
// refused because a change is under way.
func (s *Scenario) setMembers(n int) error {
	if err := setValue(s, "members", n, func(set *settings, n int) { set.members = n }); err != nil {
		return err
	}
	if _, err := s.running(); err != nil {
		return nil // the value is kept for the next Run
	}
	s.changes.add(&change{node: "inventory", kind: membersKind, what: fmt.Sprintf("members set to %d", n),
		run: func(ctx context.Context, rt *runtime, _ string) error { return s.fitMembers(ctx, rt) }})
	return nil
}

// fitMembers stops members, newest first, or starts them in free slots
// until as many are started as the members knob says now. Those stopped
// commit and leave cleanly; a crashed one is forgotten.
func (s *Scenario) fitMembers(ctx context.Context, rt *runtime) error {
	s.ops.Lock()
	s.mu.Lock()
	want := s.set.members
	var started []int
	for i, m := range s.members {
		if m != nil {
			started = append(started, i)
		}
	}
	s.mu.Unlock()
	var stopping []*member
	for len(started) > want {
		i := started[len(started)-1]
		started = started[:len(started)-1]
		s.rebalances.begin(memberID(i)+" left", true)
		stopping = append(stopping, s.detachMember(i))
	}
	var err error
	for i := 0; i < maxMembers && len(started) < want && err == nil && ctx.Err() == nil; i++ {
		if !slices.Contains(started, i) {
			s.rebalances.begin(memberID(i)+" joined", true)
			err = s.startMember(rt, i)
			started = append(started, i)
		}
	}
	s.ops.Unlock()
	waitGone(stopping...)
	return err
}

// removeMember stops the newest running member cleanly; it commits and
// leaves in the background.
func (s *Scenario) removeMember() error {
	if _, err := s.running(); err != nil {
		return err
	}
	if err := s.membersSteady(); err != nil {
		return err
	}
	s.mu.Lock()
	last, running := -1, 0
	for i, m := range s.members {
		if m != nil && !m.isCrashed() {
			last = i
			running++
		}
	}
	s.mu.Unlock()
	if running <= 1 {
		return flow.Errorf(flow.Invalid, "the group keeps at least one member; crash it, or set members to 0 as in the article, to see what happens with none")
	}
	s.rebalances.begin(memberID(last)+" left", true)
	s.detachMember(last)
	s.countMembers()
	return nil
}

// membersSteady refuses a command that adds, removes, crashes or restarts a
// member while a change stops and starts the members: a slot is empty
// between its member's stop and its start.
func (s *Scenario) membersSteady() error {
	if what := s.changes.busy(); what != "" {
		return flow.Errorf(flow.Unavailable, "the members are being stopped and started (%s): try again in a moment", what)
	}
	return nil
}

// restartMembers stops every running member cleanly, does between, and
// starts them again: how client options change, and how Kafka wants a group
// to be empty while its offsets are reset. It runs as a change, holding ops
// only while it empties and fills the slots; when ctx ends it starts nothing.
func (s *Scenario) restartMembers(ctx context.Context, rt *runtime, reason string, between func() error) error {
	release := s.rebalances.hold()
	defer release()
	s.rebalances.begin(reason, false)
	s.ops.Lock()
	s.mu.Lock()
	var live []int
	for i, m := range s.members {
		if m != nil && !m.isCrashed() {
			live = append(live, i)
		}
	}
	s.mu.Unlock()
	var stopping []*member
	for _, i := range live {
		stopping = append(stopping, s.detachMember(i))
	}
	s.ops.Unlock()
	waitGone(stopping...)
	err := between()

	s.ops.Lock()
	defer s.ops.Unlock()
	if ctx.Err() != nil {
		return nil // shutting down
	}
	for _, i := range live {
		if e := s.startMember(rt, i); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// setPartitions grows the topic in place or, since Kafka cannot remove
// partitions, deletes and recreates it. Either is a change: the knob shows
// the new count once the topic has it.
func (s *Scenario) setPartitions(n int) error {
	s.mu.Lock()
	cur, rt := s.set.partitions, s.rt
	s.mu.Unlock()
	if rt == nil {
		return setValue(s, "partitions", n, func(set *settings, n int) { set.partitions = n })
	}
	if n < cur && rt.paths.IsCut() {
		return flow.Errorf(flow.Invalid, "restore the path to the broker first: recreating the topic stops and starts every client")
	}
	if n == cur && s.changes.busy() == "" {
		return nil
	}
	if err := s.changes.room(); err != nil {
		return err
	}
	s.changes.add(&change{node: "orders", what: fmt.Sprintf("partitions set to %d", n),
		run: func(ctx context.Context, rt *runtime, _ string) error { return s.changePartitions(ctx, rt, n) }})
	return nil
}

// changePartitions gives the topic n partitions.
func (s *Scenario) changePartitions(ctx context.Context, rt *runtime, n int) error {
	cur := s.partitionCount()
	switch {
	case n == cur:
		return nil
	case n < cur && rt.paths.IsCut():
		return flow.Errorf(flow.Invalid, "restore the path to the broker first: recreating the topic stops and starts every client")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if n > cur {
		resp, err := rt.admin.UpdatePartitions(ctx, n, s.topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return flow.Errorf(flow.Unavailable, "could not add partitions: %v", err)
		}
		s.mu.Lock()
		s.set.partitions = n
		s.mu.Unlock()
		s.rebalances.begin(fmt.Sprintf("the topic grew to %d partitions", n), true)
		s.knobChanged("partitions", n)
		s.state("orders", "up", fmt.Sprintf("grew from %d to %d partitions; keys now hash to other partitions", cur, n))
		return nil
	}
	err := s.restartMembers(ctx, rt, fmt.Sprintf("the topic was recreated with %d partitions", n), func() error {
		s.stopProducer(ctx)
		err := s.recreateTopic(ctx, rt.admin, n)
		if ctx.Err() != nil {
			return err // shutting down
		}
		s.mu.Lock()
		set := s.set
		s.mu.Unlock()
		if e := s.startProducer(rt, set); err == nil {
			err = e
		}
		return err
	})
	if err != nil {
		return err
	}
	s.knobChanged("partitions", n)
	s.state("orders", "up", fmt.Sprintf("deleted and created again with %d partitions: its records and the group's offsets are gone", n))
	return nil
}

// recreateTopic deletes the topic and creates it with n partitions; the
// group's offsets go too, since they point into the deleted log.
func (s *Scenario) recreateTopic(ctx context.Context, admin *kadm.Client, n int) error {
	if _, err := admin.DeleteTopic(ctx, s.topic); err != nil {
		return flow.Errorf(flow.Unavailable, "could not delete the topic: %v", err)
	}
	s.ledger.topicDeleted()
	s.outside.reset()
	s.mu.Lock()
	s.parts, s.endsAgo = nil, nil
	s.mu.Unlock()
	for p := range s.reached {
		s.reached[p].Store(0)
	}
	// A broker may take a moment to forget the old topic.
	for {
		_, err := admin.CreateTopic(ctx, int32(n), -1, nil, s.topic)
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || ctx.Err() != nil {
			return flow.Errorf(flow.Unavailable, "the topic was deleted but could not be created again (%v): set the partitions again to retry", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	s.set.partitions = n
	s.mu.Unlock()
	// Only a crashed member can still be in the group here; its offsets
	// then stay and point past the new logs' ends, where kgo starts over.
	admin.DeleteGroup(ctx, s.group)
	return nil
}

// replayTarget computes the offset to resume each partition from.
type replayTarget func(ctx context.Context, admin *kadm.Client, s *Scenario, parts []int32, starts, ends kadm.ListedOffsets) (map[int32]int64, error)

func replayEarliest(_ context.Context, _ *kadm.Client, s *Scenario, parts []int32, starts, _ kadm.ListedOffsets) (map[int32]int64, error) {
	to := make(map[int32]int64, len(parts))
	for _, p := range parts {
		o, _ := starts.Lookup(s.topic, p)
		to[p] = o.Offset
	}
	return to, nil
}

func replayOffset(offset int64) replayTarget {
	return func(_ context.Context, _ *kadm.Client, s *Scenario, parts []int32, starts, ends kadm.ListedOffsets) (map[int32]int64, error) {
		to := make(map[int32]int64, len(parts))
		for _, p := range parts {
			st, _ := starts.Lookup(s.topic, p)
			end, _ := ends.Lookup(s.topic, p)
			if offset > end.Offset {
				return nil, flow.Errorf(flow.Invalid, "offset %d is in the future for partition %d: its next record gets offset %d", offset, p, end.Offset)
			}
			// Records before the log's start were deleted (by retention,
			// or a learner's DeleteRecords): replay from the first one
			// left, and say so.
			to[p] = max(offset, st.Offset)
		}
		return to, nil
	}
}

func replayTime(t time.Time) replayTarget {
	return func(ctx context.Context, admin *kadm.Client, s *Scenario, parts []int32, _, ends kadm.ListedOffsets) (map[int32]int64, error) {
		after, err := admin.ListOffsetsAfterMilli(ctx, t.UnixMilli(), s.topic)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return nil, flow.Errorf(flow.Unavailable, "could not look up offsets by time: %v", err)
		}
		to := make(map[int32]int64, len(parts))
		for _, p := range parts {
			o, _ := after.Lookup(s.topic, p)
			if o.Offset < 0 { // nothing written since then
				o, _ = ends.Lookup(s.topic, p)
			}
			to[p] = o.Offset
		}
		return to, nil
	}
}

// replay resets the group's committed offsets in the chosen partitions and
// lets the members process from there again. Everything is checked before
// anything changes; the checks read offsets from the broker without holding
// ops, and the reset itself is a change.
func (s *Scenario) replay(knob string, value any, target replayTarget) error {
	rt, err := s.running()
	if err != nil {
		return err
	}
	if rt.paths.IsCut() {
		return flow.Errorf(flow.Invalid, "restore the path to the broker first: a replay stops and starts the members")
	}
	if err := s.changes.room(); err != nil {
		return err
	}
	s.mu.Lock()
	set := s.set
	s.mu.Unlock()
	if _, _, waitFor := s.crashedHeld(time.Now()); waitFor > 0 {
		return flow.Errorf(flow.Unavailable, "a crashed member is still in the group for %.0f s (until its session times out); Kafka resets offsets only in a group with no live members", waitFor.Seconds())
	}
	parts, err := replayPartitions(set.replayPart, set.partitions)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(rt.ctx, 10*time.Second)
	defer cancel()
	starts, ends, err := logBounds(ctx, rt.admin, s.topic)
	if err != nil {
		return flow.Errorf(flow.Unavailable, "could not read the partitions' offsets: %v", err)
	}
	to, err := target(ctx, rt.admin, s, parts, starts, ends)
	if err != nil {
		return err
	}

	if v, ok := value.(int); ok {
		apply := map[string]func(*settings){
			"replay-offset":      func(set *settings) { set.replayOffset = v },
			"replay-minutes-ago": func(set *settings) { set.replayMinutes = v },
		}[knob]
		s.mu.Lock()
		apply(&s.set)
		s.mu.Unlock()
		s.knobChanged(knob, v)
	}
	var where []string
	for _, p := range parts {
		w := fmt.Sprintf("%s from %d", partitionID(p), to[p])
		if v, ok := value.(int); ok && knob == "replay-offset" && int64(v) < to[p] {
			w += fmt.Sprintf(" (asked for %d, but records %d to %d were deleted: the log starts at %d now)", v, v, to[p]-1, to[p])
		}
		where = append(where, w)
	}
	s.changes.add(&change{node: "inventory", what: "replay " + strings.Join(where, ", "),
		run: func(ctx context.Context, rt *runtime, _ string) error {
			err := s.restartMembers(ctx, rt, "replay", func() error {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				os := make(kadm.Offsets)
				for p, o := range to {
					os.Add(kadm.Offset{Topic: s.topic, Partition: p, At: o, LeaderEpoch: -1})
				}
				resp, err := rt.admin.CommitOffsets(ctx, s.group, os)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					return flow.Errorf(flow.Unavailable, "the broker refused the new offsets: %v", err)
				}
				return nil
			})
			if err == nil {
				s.state("inventory", "replaying", strings.Join(where, ", "))
			}
			return err
		}})
	return nil
}

// replayPartitions turns the replay-partition knob into partition numbers.
func replayPartitions(choice string, partitions int) ([]int32, error) {
	if choice == "all" {
		ps := make([]int32, partitions)
		for p := range ps {
			ps[p] = int32(p)
		}
		return ps, nil
	}
	p, err := strconv.Atoi(strings.TrimPrefix(choice, "p"))
	if err != nil || p < 0 || p >= partitions {
		return nil, flow.Errorf(flow.Invalid, "partition %s does not exist: the topic has %d partitions, p0 to p%d", choice, partitions, partitions-1)
	}
	return []int32{int32(p)}, nil
}

func (s *Scenario) liveMemberList() string    { return s.memberList(false) }
func (s *Scenario) crashedMemberList() string { return s.memberList(true) }

func (s *Scenario) memberList(crashed bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, m := range s.members {
		if m != nil && m.isCrashed() == crashed {
			ids = append(ids, m.id)
		}
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// logBounds lists the topic's start and end offsets. A partition's answer
// that Kafka calls retriable (the embedded broker answers
// UNKNOWN_TOPIC_OR_PARTITION now and then for a topic it has) is asked
// again, a few times, as Kafka's own clients do, within ctx.
func logBounds(ctx context.Context, admin *kadm.Client, topic string) (starts, ends kadm.ListedOffsets, err error) {
	for try := 0; ; try++ {
		starts, err = admin.ListStartOffsets(ctx, topic)
		if err == nil {
			err = starts.Error()
		}
		if err == nil {
			ends, err = admin.ListEndOffsets(ctx, topic)
			if err == nil {
				err = ends.Error()
			}
		}
		if err == nil || try == 4 || !kerr.IsRetriable(err) {
			return starts, ends, err
		}
		select {
		case <-ctx.Done():
			return starts, ends, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
