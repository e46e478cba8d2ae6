// Package rabbittest holds what the RabbitMQ scenarios' tests share: the real
// broker they run against, a fresh lab per test, a sink that keeps every
// event, setting knobs as the server does, waiting on the stats, and the
// checks every pattern's ledger and view must pass. What a test asserts about
// its own pattern stays in its own package.
package rabbittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// URL is the real RabbitMQ the tests run against: $AMQP_URL, or the
// scenarios' default.
func URL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return rabbit.DefaultURL
}

// MustLab returns a lab of its own for one test, so that tests running at
// once, and queues left by an earlier run, never meet.
func MustLab(tb testing.TB) *flow.Lab {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	l, err := flow.NewLab("t" + hex.EncodeToString(b))
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Run runs a scenario's Run in the background until the test ends, and then
// checks that it returned nil within 15 s of its context ending.
func Run(tb testing.TB, run func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			tb.Error("Run did not return within 15 s of its context ending")
		}
	})
}

// DeleteTopology removes the queues and exchanges a lab declared, over a
// connection of its own. Without a broker nothing was declared, so nothing is
// done.
func DeleteTopology(tb testing.TB, url string, queues, exchanges []string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Error(err)
		return
	}
	for _, q := range queues {
		ch.QueueDelete(q, false, false, false)
	}
	for _, x := range exchanges {
		ch.ExchangeDelete(x, false, false)
	}
}

// Sink keeps every event for the test to look through.
type Sink struct {
	mu     sync.Mutex
	events []flow.Event
}

var _ flow.Sink = (*Sink)(nil)

func (s *Sink) Emit(e flow.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// Events returns every event so far, in order.
func (s *Sink) Events() []flow.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]flow.Event(nil), s.events...)
}

// Count returns how many events so far match.
func (s *Sink) Count(match func(flow.Event) bool) int {
	n := 0
	for _, e := range s.Events() {
		if match(e) {
			n++
		}
	}
	return n
}

// MustSet sets a knob as the server would: validated against its declaration.
func MustSet(tb testing.TB, s flow.Scenario, knob string, value any) {
	tb.Helper()
	if err := Set(s, knob, value); err != nil {
		tb.Fatalf("set %s to %v: %v", knob, value, err)
	}
}

// Set sets a knob as the server would and returns what the scenario said.
func Set(s flow.Scenario, knob string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return flow.SetKnob(s, knob, raw)
}

// WaitFor polls cond until it holds, failing with what the scenario shows.
func WaitFor(tb testing.TB, s flow.Scenario, timeout time.Duration, what string, cond func(flow.Stats) bool) flow.Stats {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s; stats:\n%s", timeout, what, Describe(st))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Describe prints stats for a failing test: every node, counter and ledger
// part.
func Describe(st flow.Stats) string {
	var b strings.Builder
	for node, ns := range st.Nodes {
		fmt.Fprintf(&b, "  %s: %s %v\n", node, ns.State, ns.Badges())
	}
	for _, c := range st.Counters {
		fmt.Fprintf(&b, "  %s = %d\n", c.Name, c.Value)
	}
	fmt.Fprintf(&b, "  ledger %d =", st.Ledger.Total.Value)
	for _, p := range st.Ledger.Parts {
		fmt.Fprintf(&b, " %s %d", p.Name, p.Value)
	}
	return b.String()
}

// Counter returns the named counter's value; a missing one is a bug in the
// test.
func Counter(st flow.Stats, name string) int64 {
	for _, c := range st.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	panic("no counter " + name)
}

// AllUp holds when every named node is up.
func AllUp(names ...string) func(flow.Stats) bool { return allIn("up", names) }

// AllUnreachable holds when no named node can reach the broker.
func AllUnreachable(names ...string) func(flow.Stats) bool { return allIn("unreachable", names) }

func allIn(state string, names []string) func(flow.Stats) bool {
	return func(st flow.Stats) bool {
		for _, n := range names {
			if st.Nodes[n].State != state {
				return false
			}
		}
		return true
	}
}

// HasBadge says whether one of a node's badges contains badge.
func HasBadge(ns flow.NodeState, badge string) bool {
	for _, b := range ns.Badges() {
		if strings.Contains(b, badge) {
			return true
		}
	}
	return false
}

// hasValue says whether ns sends the fact name with the value want.
func hasValue(ns flow.NodeState, name string, want any) bool {
	v, ok := ns.Value(name)
	return ok && v == want
}

// MustBalance checks that the ledger's parts add up to its total.
func MustBalance(tb testing.TB, st flow.Stats) {
	tb.Helper()
	if !st.Ledger.Balanced() {
		tb.Fatalf("ledger does not balance:\n%s", Describe(st))
	}
}

// EveryNodeKnown checks that each event names only nodes of the scenario's
// view.
func EveryNodeKnown(tb testing.TB, s flow.Scenario, events []flow.Event) {
	tb.Helper()
	nodes := map[string]bool{"": true}
	for _, n := range s.View().Nodes {
		nodes[n.ID] = true
	}
	for _, e := range events {
		if !nodes[e.From] || !nodes[e.To] {
			tb.Fatalf("event %s from %q to %q names a node the view lacks", e.Kind, e.From, e.To)
		}
	}
}

// CheckBacklogCap presses "Send 100 orders" until max wait to be sent, then
// once more: that press is refused with an error naming the cap, and the
// backlog stays as it was.
func CheckBacklogCap(t *testing.T, s flow.Scenario, max int) {
	t.Helper()
	const knob = "order-service.send-100"
	for range max / 100 {
		MustSet(t, s, knob, nil)
	}
	want := int64(max)
	if ns := s.Stats().Nodes["order-service"]; !hasValue(ns, "unsent", want) {
		t.Fatalf("after %d presses order-service's facts are %v, want waiting %d", max/100, ns.Facts, want)
	}
	err := Set(s, knob, nil)
	if flow.KindOf(err) != flow.Invalid || !strings.Contains(flow.MessageOf(err), fmt.Sprint(max)) {
		t.Errorf("a press past the cap: %v, want an invalid error naming the cap", err)
	}
	if ns := s.Stats().Nodes["order-service"]; !hasValue(ns, "unsent", want) {
		t.Errorf("a refused press changed the backlog: %v", ns.Facts)
	}
}

// CheckPresetsRoundTrip applies preset a, lets tweak change a knob as a
// learner would, then applies b: every knob must then be what a fresh apply
// of b gives, for every ordered pair of presets. open makes a scenario that
// is not running.
func CheckPresetsRoundTrip(t *testing.T, open func(testing.TB) flow.Scenario, tweak func(testing.TB, flow.Scenario)) {
	t.Helper()
	apply := func(s flow.Scenario, preset string) {
		t.Helper()
		if err := flow.ApplyPreset(s, preset); err != nil {
			t.Fatalf("preset %s: %v", preset, err)
		}
	}
	presets := open(t).Presets()
	for _, a := range presets {
		for _, b := range presets {
			fresh := open(t)
			apply(fresh, b.Name)
			after := open(t)
			apply(after, a.Name)
			tweak(t, after)
			apply(after, b.Name)
			want, got := fresh.Knobs(), after.Knobs()
			for i := range want {
				if !reflect.DeepEqual(want[i].Value, got[i].Value) {
					t.Errorf("%s then %s: %s = %v, a fresh %s gives %v", a.Name, b.Name, got[i].Name, got[i].Value, b.Name, want[i].Value)
				}
			}
		}
	}
}

// Held lists what the broker holds for lab l, as the broker itself lists it
// (rabbitmqctl: the management plugin is not enabled here): every queue and
// exchange whose name ends in "."+l.ID, as "queue <name>" or "exchange
// <name>", sorted. Without rabbitmqctl the test is skipped.
func Held(tb testing.TB, l *flow.Lab) []string {
	tb.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		tb.Skip("rabbitmqctl is needed to list what the broker holds")
	}
	var held []string
	for _, kind := range []string{"queue", "exchange"} {
		out, err := exec.Command("rabbitmqctl", "list_"+kind+"s", "-q", "--no-table-headers", "name").Output()
		if err != nil {
			tb.Fatalf("rabbitmqctl list_%ss: %v", kind, err)
		}
		for name := range strings.FieldsSeq(string(out)) {
			if strings.HasSuffix(name, "."+l.ID) {
				held = append(held, kind+" "+name)
			}
		}
	}
	slices.Sort(held)
	return held
}

// CheckTeardown runs two labs of one pattern at once, each with load from
// load, until the broker holds what they declared, stops them, tears down
// the first and checks with the broker that all of the first's queues and
// exchanges are gone while the second's are all still there; then tears
// down the second, and the first again (nothing left is not an error).
// open opens the scenario in a lab against url; want is what a lab holds
// while it runs, named as Held names them.
func CheckTeardown(t *testing.T, open func(testing.TB, *flow.Lab) flow.Scenario, load func(testing.TB, flow.Scenario), want func(*flow.Lab) []string) {
	t.Helper()
	type run struct {
		lab  *flow.Lab
		s    flow.Scenario
		stop context.CancelFunc
		done chan error
	}
	var runs []*run
	for range 2 {
		l := MustLab(t)
		s := open(t, l)
		ctx, stop := context.WithCancel(context.Background())
		r := &run{lab: l, s: s, stop: stop, done: make(chan error, 1)}
		go func() { r.done <- s.Run(ctx) }()
		t.Cleanup(stop)
		runs = append(runs, r)
		load(t, s)
	}
	for _, r := range runs {
		w := sorted(want(r.lab))
		deadline := time.Now().Add(10 * time.Second)
		for !slices.Equal(Held(t, r.lab), w) {
			if time.Now().After(deadline) {
				t.Fatalf("lab %s: the broker holds %v, want %v", r.lab.ID, Held(t, r.lab), w)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if Counter(r.s.Stats(), "published") == 0 {
			t.Fatalf("lab %s published nothing: %s", r.lab.ID, Describe(r.s.Stats()))
		}
	}
	for _, r := range runs {
		r.stop()
		select {
		case err := <-r.done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return within 15 s of its context ending")
		}
	}
	teardown := func(r *run) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.s.(flow.Tearer).Teardown(ctx); err != nil {
			t.Fatalf("Teardown of lab %s: %v", r.lab.ID, err)
		}
	}
	first, second := runs[0], runs[1]
	teardown(first)
	if held := Held(t, first.lab); len(held) > 0 {
		t.Errorf("after Teardown the broker still holds %v", held)
	}
	if held, w := Held(t, second.lab), want(second.lab); !slices.Equal(held, sorted(w)) {
		t.Errorf("tearing down lab %s changed lab %s: the broker holds %v, want %v", first.lab.ID, second.lab.ID, held, w)
	}
	teardown(second)
	teardown(first)
	if held := Held(t, second.lab); len(held) > 0 {
		t.Errorf("after Teardown the broker still holds %v", held)
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
