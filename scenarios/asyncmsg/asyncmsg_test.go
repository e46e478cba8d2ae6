package asyncmsg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is one scenario running against its own embedded cluster.
type lab struct {
	t       *testing.T
	s       *asyncmsg.Scenario
	events  *events
	emit    *flow.Emitter
	brokers []string
	topic   string
}

// startLab starts a one-broker kfake cluster on a random port and the
// scenario in a fresh lab, applies knobs before Run, and stops both at the
// end of the test, failing it if Run does not return in time.
func startLab(t *testing.T, knobs map[string]any) *lab {
	t.Helper()
	return startLabOn(t, 1, knobs)
}

// startLabOn is startLab on a cluster of n brokers.
func startLabOn(t *testing.T, n int, knobs map[string]any) *lab {
	t.Helper()
	return startLabWith(t, n, 0, knobs)
}

// startLabWith is startLabOn with an emitter that passes about perSecond
// message hops a second, as the server's does (0: every hop).
func startLabWith(t *testing.T, n, perSecond int, knobs map[string]any) *lab {
	t.Helper()
	// The embedded broker allows a 1 s session timeout so that crash tests
	// do not wait for a real broker's 6 s minimum.
	c, err := kfake.NewCluster(kfake.NumBrokers(n), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := mustLab(t)
	ev := &events{}
	em := flow.NewEmitter(l, asyncmsg.Name, ev).Sample(perSecond)
	s, err := asyncmsg.Open(asyncmsg.Config{Brokers: c.ListenAddrs(), Lab: l, Emit: em})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range knobs {
		mustSet(t, s, name, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return 20 s after its context ended")
		}
	})
	return &lab{t: t, s: s, events: ev, emit: em, brokers: c.ListenAddrs(), topic: l.Name("orders")}
}

// mustSet sets a knob the way the server does: parsed from JSON first.
func mustSet(t testing.TB, s flow.Scenario, name string, v any) {
	t.Helper()
	raw, _ := json.Marshal(v)
	if v == nil {
		raw = nil
	}
	if err := flow.SetKnob(s, name, raw); err != nil {
		t.Fatalf("set %s to %v: %v", name, v, err)
	}
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *lab) counter(name string) int64 {
	st := l.s.Stats()
	for _, c := range st.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	l.t.Fatalf("no counter %q", name)
	return 0
}

func (l *lab) part(name string) int64 {
	for _, c := range l.s.Stats().Ledger.Parts {
		if c.Name == name {
			return c.Value
		}
	}
	l.t.Fatalf("no ledger part %q", name)
	return 0
}

func (l *lab) node(id string) flow.NodeState { return l.s.Stats().Nodes[id] }

// count is a node's whole-number fact; a node that does not send it fails
// the test.
func (l *lab) count(id, name string) int64 {
	l.t.Helper()
	v, _ := l.node(id).Value(name)
	n, ok := v.(int64)
	if !ok {
		l.t.Fatalf("node %s sends %s = %v, want a whole number", id, name, v)
	}
	return n
}

// word is a node's text fact; a node that does not send it fails the test.
func (l *lab) word(id, name string) string {
	l.t.Helper()
	v, _ := l.node(id).Value(name)
	w, ok := v.(string)
	if !ok {
		l.t.Fatalf("node %s sends %s = %v, want text", id, name, v)
	}
	return w
}

// waitAllProcessed waits until every order event sent is processed and
// nothing is waiting, failed or lost, with the ledger balanced throughout.
func (l *lab) waitAllProcessed(timeout time.Duration) {
	l.t.Helper()
	eventually(l.t, timeout, "every produced order event processed", func() bool {
		led := l.s.Stats().Ledger
		if !led.Balanced() {
			l.t.Fatalf("ledger does not balance: %+v", led)
		}
		return led.Total.Value > 0 && l.part("processed") == led.Total.Value
	})
}

// produceOutside writes records to the lab's topic with a client of its
// own, straight to the broker, as a learner's kcat would.
func (l *lab) produceOutside(rs ...*kgo.Record) {
	l.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.brokers...), kgo.DefaultProduceTopic(l.topic))
	if err != nil {
		l.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		l.t.Fatal(err)
	}
}

// events collects what the scenario emits.
type events struct {
	mu  sync.Mutex
	all []flow.Event
}

func (e *events) Emit(ev flow.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) where(keep func(flow.Event) bool) []flow.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []flow.Event
	for _, ev := range e.all {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

func (e *events) of(kind flow.Kind) []flow.Event {
	return e.where(func(ev flow.Event) bool { return ev.Kind == kind })
}

// TestOrderRecordsAreTheArticlesJSON checks order-service's hand-built
// records against the article's event format: the key is the order id and
// the value its JSON event, twenty orders open at a time.
func TestOrderRecordsAreTheArticlesJSON(t *testing.T) {
	kinds := [3]string{"order_placed", "order_paid", "order_shipped"}
	for n := uint64(1); n <= 10_000; n++ {
		i := int(n - 1)
		order := i/60*20 + i%60%20 + 1
		want := fmt.Sprintf(`{"order_id":%d,"type":%q,"data":{"qty":%d}}`, order, kinds[i%60/20], 1+order%3)
		r := asyncmsg.OrderRecord(n)
		if string(r.Key) != fmt.Sprint(order) || string(r.Value) != want || !json.Valid(r.Value) {
			t.Fatalf("event %d: key %q value %s, want key %d value %s", n, r.Key, r.Value, order, want)
		}
	}
}

// TestEveryNodeIsInTheView checks that each event names only nodes the view
// draws, and that the knobs and presets parse.
func TestEveryNodeIsInTheView(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 200, "flush-each": false, "linger": 5})
	eventually(t, 15*time.Second, "commits", func() bool { return len(l.events.of(flow.KindCommit)) > 0 })
	mustSet(t, l.s, "rate", 0)
	mustSet(t, l.s, "partitions", 5) // grow: p3, p4 appear
	l.waitAllProcessed(15 * time.Second)

	nodes := make(map[string]bool)
	v := l.s.View()
	for _, n := range v.Nodes {
		if nodes[n.ID] {
			t.Errorf("node %s is in the view twice", n.ID)
		}
		if n.X < 0 || n.X > v.Width || n.Y < 0 || n.Y > v.Height {
			t.Errorf("node %s at (%v, %v) is off the %v × %v canvas", n.ID, n.X, n.Y, v.Width, v.Height)
		}
		nodes[n.ID] = true
	}
	for id := range l.s.Stats().Nodes {
		if !nodes[id] {
			t.Errorf("stats describe node %s, which the view does not draw", id)
		}
	}
	for _, id := range []string{"order-service", "orders", "inventory", "p4", "m1", "m3"} {
		if !nodes[id] {
			t.Errorf("the view has no node %s", id)
		}
	}
	for _, ev := range l.events.where(func(flow.Event) bool { return true }) {
		for _, id := range []string{ev.From, ev.To, ev.Detail.Node} {
			if id != "" && !nodes[id] {
				t.Fatalf("event %s names node %q, which the view does not draw: %+v", ev.Kind, id, ev)
			}
		}
	}
	for id := range l.s.Stats().Nodes {
		if !nodes[id] {
			t.Errorf("Stats has node %s, which the view does not draw", id)
		}
	}
	for _, p := range l.s.Presets() {
		if err := flow.ApplyPreset(l.s, p.Name); err != nil {
			t.Errorf("preset %s: %v", p.Name, err)
		}
	}
}

// waitStable waits until m1 to m3 each hold a partition and the group's
// first rebalance is over: up to 30 s, as three members joining one by one
// on a machine running the server's tests beside these took over 15.
func (l *lab) waitStable() {
	l.t.Helper()
	eventually(l.t, 30*time.Second, "three members consuming in a stable group", func() bool {
		return l.node("inventory").State == "stable" && l.node("m1").State == "consuming" &&
			l.node("m2").State == "consuming" && l.node("m3").State == "consuming"
	})
}

// caughtUp reports whether the broker says the group committed every
// partition up to its end.
func (l *lab) caughtUp() bool {
	for _, n := range l.s.View().Nodes {
		if n.Kind != "partition" {
			continue
		}
		if l.count(n.ID, "lag") != 0 || max(l.count(n.ID, "committed"), 0) != l.count(n.ID, "log-end") { // none (-1) is nothing to process
			return false
		}
	}
	return true
}

// crashOf returns how many processed records member id had not committed
// when it crashed, as its crash event says.
func (l *lab) crashOf(id string) int64 {
	l.t.Helper()
	crashes := l.events.where(func(ev flow.Event) bool {
		return ev.Kind == flow.KindState && ev.Detail.Node == id && ev.Detail.State == "crashed"
	})
	if len(crashes) != 1 {
		l.t.Fatalf("%d crash events for %s, want 1", len(crashes), id)
	}
	return crashes[0].Detail.Value.(int64)
}

// TestCrashBeforeCommitMakesDuplicates crashes a member that processed
// records but has not committed them: whoever takes over its partitions
// processes exactly those again. Without the idempotent consumer each is a
// duplicate side effect; with it, stock is reserved once per order event.
func TestCrashBeforeCommitMakesDuplicates(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			// m1 cannot keep up, so it works in full batches of 20, each 4 s long:
			// time enough to crash it mid-batch.
			l := startLab(t, map[string]any{"rate": 100, "flush-each": false, "commit-mode": "after-processing",
				"session-timeout": 1, "idempotent": idempotent, "m1-processing": 200})
			l.waitStable()
			// Early in a batch: near its end the batch's commit may
			// beat the crash, which then loses nothing.
			eventually(t, 20*time.Second, "m1 holding processed records it has not committed", func() bool {
				n := l.count("m1", "uncommitted")
				return n >= 3 && n <= 12
			})
			mustSet(t, l.s, "m1-crash", nil)
			lost := l.crashOf("m1")
			if lost == 0 {
				t.Fatal("m1 crashed with nothing uncommitted: the test proves nothing")
			}
			if st := l.node("m1").State; st != "crashed" {
				t.Errorf("m1 is %q after its crash", st)
			}
			mustSet(t, l.s, "rate", 0)
			// The group catches up only after m1's partition went to
			// another member, which reads m1's uncommitted records again:
			// until then its partition may not be read at all.
			eventually(t, 30*time.Second, "m1's uncommitted records delivered again", func() bool { return l.counter("redeliveries") >= lost })
			l.waitAllProcessed(30 * time.Second)
			eventually(t, 30*time.Second, "the group caught up", l.caughtUp)

			total := l.s.Stats().Ledger.Total.Value
			if got := l.counter("redeliveries"); got != lost {
				t.Errorf("redelivered %d records, want exactly the %d m1 processed but did not commit", got, lost)
			}
			dups := l.events.where(func(ev flow.Event) bool { return ev.Kind == flow.KindDeliver && ev.Detail.Duplicate })
			if int64(len(dups)) != lost {
				t.Errorf("%d deliveries flagged duplicate, want %d", len(dups), lost)
			}
			if idempotent {
				if d, s, r := l.counter("duplicates"), l.counter("skipped"), l.counter("reserved"); d != 0 || s != lost || r != total {
					t.Errorf("idempotent: duplicates %d, skipped %d, reserved %d; want 0, %d and one per order event (%d)", d, s, r, lost, total)
				}
			} else {
				if d, r := l.counter("duplicates"), l.counter("reserved"); d != lost || r != total+lost {
					t.Errorf("duplicates %d, reserved %d; want %d and %d", d, r, lost, total+lost)
				}
				if led := l.s.Stats().Ledger; led.Duplicates == nil || led.Duplicates.Value != lost {
					t.Errorf("ledger duplicates %+v, want %d", led.Duplicates, lost)
				}
			}
			rebalances := l.events.of(flow.KindRebalance)
			last := rebalances[len(rebalances)-1]
			// The session runs from m1's last heartbeat, up to a third of
			// the timeout before the crash.
			if !strings.Contains(last.Detail.Outcome, "m1 crashed") || last.Detail.LatencyMS < 600 {
				t.Errorf("the crash's rebalance %+v should name the crash and wait for the 1 s session timeout", last.Detail)
			}
			mustSet(t, l.s, "m1-restart", nil)
			eventually(t, 15*time.Second, "m1 back at work", func() bool { return l.node("m1").State == "consuming" })
		})
	}
}

// TestTenThousandKeyedRecordsThroughACrash sends 10,000 order events through
// three members, kills one midway, and checks that every event was processed
// at least once and each order's events in the order they were sent.
func TestTenThousandKeyedRecordsThroughACrash(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5, "commit-mode": "after-processing",
		// m2 is a little slower than its share, so it always has a batch
		// in hand when it is killed.
		"session-timeout": 1, "m1-processing": 1, "m2-processing": 2, "m3-processing": 1})
	l.waitStable()
	mustSet(t, l.s, "rate", 2000)
	eventually(t, 60*time.Second, "5,000 events processed, m2 mid-batch", func() bool {
		return l.part("processed") >= 5000 && l.count("m2", "uncommitted") > 0
	})
	mustSet(t, l.s, "m2-crash", nil)
	eventually(t, 60*time.Second, "10,000 events sent", func() bool { return l.s.Stats().Ledger.Total.Value >= 10_000 })
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(60 * time.Second)
	eventually(t, 30*time.Second, "the group caught up", l.caughtUp)

	led := l.s.Stats().Ledger
	if failed := l.part("failed") + l.part("refused"); failed != 0 {
		t.Fatalf("%d events failed to produce: %+v", failed, led)
	}
	seen := make(map[string]bool)
	lastOfKey := make(map[string]int)
	for _, ev := range l.events.of(flow.KindDeliver) {
		var n int
		if _, err := fmt.Sscanf(ev.MsgID[strings.IndexByte(ev.MsgID, '-')+1:], "%d", &n); err != nil {
			t.Fatalf("message id %q: %v", ev.MsgID, err)
		}
		if ev.Detail.Duplicate {
			continue
		}
		// The same event twice in a row, not flagged duplicate, is the one
		// the crash interrupted: delivered, never finished.
		if n < lastOfKey[ev.Detail.Key] {
			t.Fatalf("order %s: event %d processed after event %d", ev.Detail.Key, n, lastOfKey[ev.Detail.Key])
		}
		lastOfKey[ev.Detail.Key] = n
		seen[ev.MsgID] = true
	}
	if int64(len(seen)) != led.Total.Value {
		t.Errorf("%d distinct events delivered, %d sent", len(seen), led.Total.Value)
	}
	if d, lost := l.counter("redeliveries"), l.crashOf("m2"); d != lost || lost == 0 {
		t.Errorf("redelivered %d, want the %d m2 had not committed (more than none)", d, lost)
	}
	t.Logf("%d events, %d orders, m2 lost %d uncommitted", led.Total.Value, len(lastOfKey), l.crashOf("m2"))
}

// TestBusyLabDrawsWholeMessagesAndCountsEveryOne floods a lab whose emitter
// passes about 300 hops a second, as the server's passes what a view can
// draw: the ledger still accounts for every record exactly, the hops that
// pass are those of whole messages, and an outside client's record is drawn
// however busy the lab is.
func TestBusyLabDrawsWholeMessagesAndCountsEveryOne(t *testing.T) {
	l := startLabWith(t, 1, 300, map[string]any{"rate": 0, "flush-each": false, "commit-mode": "after-processing",
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	for range 5 {
		mustSet(t, l.s, "send-1000", nil)
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "the lab sampling", func() bool { return l.emit.Sampling() > 1 })
	l.produceOutside(&kgo.Record{Key: []byte("4242"), Value: []byte(`{"order_id":4242}`)})
	l.waitAllProcessed(30 * time.Second)
	eventually(t, 10*time.Second, "the outside record processed", func() bool { return l.counter("outside-messages") == 1 })

	total := l.s.Stats().Ledger.Total.Value
	if total != 5000 || l.counter("acked") != total || l.counter("reserved") != total+1 || l.counter("redeliveries") != 0 {
		t.Fatalf("ledger %+v, counters %+v; want 5000 produced, acked and processed once", l.s.Stats().Ledger, l.s.Stats().Counters)
	}
	hops := map[string]map[flow.Kind]int{}
	outsideDrawn := false
	for _, ev := range l.events.where(func(ev flow.Event) bool { return ev.MsgID != "" }) {
		if ev.Detail.External {
			outsideDrawn = outsideDrawn || ev.Detail.Key == "4242"
			continue
		}
		if hops[ev.MsgID] == nil {
			hops[ev.MsgID] = map[flow.Kind]int{}
		}
		hops[ev.MsgID][ev.Kind]++
	}
	if !outsideDrawn {
		t.Error("the outside record was not drawn in a busy lab")
	}
	whole := 0
	for _, k := range hops {
		if k[flow.KindPublish] == 1 && k[flow.KindAck] == 1 && k[flow.KindDeliver] == 1 {
			whole++
		}
	}
	// k changes while the flood starts, which may cut a few journeys.
	if len(hops) == 0 || len(hops) > 2500 || whole < len(hops)*3/4 {
		t.Errorf("%d of 5000 messages drawn, %d of them whole; want a sample of whole messages", len(hops), whole)
	}
	t.Logf("%d of 5000 messages drawn, %d whole; one in %d drawn at the end", len(hops), whole, l.emit.Sampling())
}

// TestOutsideClientsJoin uses a Kafka client configured on its own, straight
// to the broker, as a learner's kcat or Python would: its records show up as
// external with their payload, a non-JSON one as raw bytes, and it reads
// flowlab's records with their message ids.
func TestOutsideClientsJoin(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 20, "flush-each": false})
	l.waitStable()
	outside, err := kgo.NewClient(kgo.SeedBrokers(l.brokers...), kgo.DefaultProduceTopic(l.topic),
		kgo.ConsumeTopics(l.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sentAt := time.Now()
	res := outside.ProduceSync(ctx,
		&kgo.Record{Key: []byte("4242"), Value: []byte(`{"order_id":4242,"type":"order_placed"}`)},
		&kgo.Record{Key: []byte("4243"), Value: []byte("\xffnot json\x00")},
	)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	var js, raw flow.Event
	eventually(t, 5*time.Second, "both outside records delivered", func() bool {
		for _, ev := range l.events.of(flow.KindDeliver) {
			switch {
			case !ev.Detail.External:
			case ev.Detail.Key == "4242":
				js = ev
			case ev.Detail.Key == "4243":
				raw = ev
			}
		}
		return js.MsgID != "" && raw.MsgID != ""
	})
	if took := time.Since(sentAt); took > time.Second {
		t.Errorf("outside records took %v to appear, want under 1 s", took)
	}
	if !strings.HasPrefix(js.MsgID, "ext-") || js.MsgID == raw.MsgID || js.Detail.Raw ||
		js.Detail.Payload != `{"order_id":4242,"type":"order_placed"}` {
		t.Errorf("JSON record from outside drawn as %+v", js)
	}
	if !raw.Detail.Raw || !strings.Contains(raw.Detail.Payload, "not json") {
		t.Errorf("non-JSON record from outside drawn as %+v", raw)
	}
	eventually(t, 5*time.Second, "both outside records processed", func() bool { return l.counter("outside-messages") == 2 })

	// flowlab's own records, read by the outside client.
	var ours *kgo.Record
	for ours == nil {
		fs := outside.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no flowlab record read by the outside client: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if k := string(r.Key); ours == nil && k != "4242" && k != "4243" {
				ours = r
			}
		})
	}
	var order struct {
		OrderID int    `json:"order_id"`
		Type    string `json:"type"`
	}
	if err := json.Unmarshal(ours.Value, &order); err != nil || order.OrderID == 0 || order.Type == "" || fmt.Sprint(order.OrderID) != string(ours.Key) {
		t.Errorf("flowlab record read from outside: key %q value %s (%v)", ours.Key, ours.Value, err)
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		if st := l.node(m).State; st != "consuming" {
			t.Errorf("%s is %q after outside records", m, st)
		}
	}
}

// TestOwnRecordsAreKnownByTheirBytesAndTime checks how a member tells this
// run's order events from others: by their bytes, written since the run
// began, and handed to the producer. An outside client writes the same
// bytes as order-service's event 5 with a time an hour ago (an earlier
// run's event), as event 7 now (a copy: a duplicate of 7), and as an event
// order-service has not made yet (someone else's).
func TestOwnRecordsAreKnownByTheirBytesAndTime(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "commit-mode": "after-processing",
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	mustSet(t, l.s, "send-1000", nil)
	l.waitAllProcessed(30 * time.Second)
	earlier, again, unmade := asyncmsg.OrderRecord(5), asyncmsg.OrderRecord(7), asyncmsg.OrderRecord(5000)
	earlier.Timestamp = time.Now().Add(-time.Hour)
	l.produceOutside(earlier, again, unmade)
	eventually(t, 10*time.Second, "the three records processed", func() bool {
		return l.counter("outside-messages") == 2 && l.counter("redeliveries") == 1
	})
	if total, done := l.s.Stats().Ledger.Total.Value, l.part("processed"); total != 1000 || done != 1000 || l.counter("duplicates") != 1 {
		t.Errorf("ledger %d produced, %d processed, %d duplicates; want 1000, 1000 and the copy of event 7", total, done, l.counter("duplicates"))
	}
	byKey := func(r *kgo.Record) flow.Event {
		var last flow.Event
		for _, ev := range l.events.of(flow.KindDeliver) {
			if ev.Detail.Key == string(r.Key) && ev.Detail.Payload == string(r.Value) {
				last = ev
			}
		}
		return last
	}
	if ev := byKey(earlier); ev.Detail.External || !strings.HasPrefix(ev.MsgID, "earlier-") {
		t.Errorf("an earlier run's event drawn as %+v", ev)
	}
	if ev := byKey(again); !ev.Detail.Duplicate || ev.Detail.External || strings.HasPrefix(ev.MsgID, "ext-") {
		t.Errorf("a copy of this run's event 7 drawn as %+v", ev)
	}
	if ev := byKey(unmade); !ev.Detail.External {
		t.Errorf("an event order-service never made drawn as %+v", ev)
	}
}

// TestBadInputChangesNothing sends wrong values and buttons that do not apply
// and checks each gets the right kind of error with the group untouched; then
// a real replay from the earliest offset processes everything again.
func TestBadInputChangesNothing(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 100, "flush-each": false, "commit-mode": "after-processing"})
	l.waitStable()
	eventually(t, 15*time.Second, "some events processed", func() bool { return l.part("processed") >= 50 })
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(15 * time.Second)
	// The view reads offsets once a second: until it has read them after
	// the last commit, it may show none committed and the log still empty.
	eventually(t, 15*time.Second, "the group caught up, every record's commit read back", func() bool {
		var sum int64
		for _, c := range committedOffsets(l) {
			sum += c
		}
		return l.caughtUp() && sum == l.s.Stats().Ledger.Total.Value
	})
	before := committedOffsets(l)
	events := len(l.events.where(func(flow.Event) bool { return true }))

	for _, c := range []struct {
		knob, raw string
		kind      flow.ErrorKind
	}{
		{"partitions", "13", flow.Invalid},
		{"partitions", "0", flow.Invalid},
		{"replay-offset", "1000000", flow.Invalid}, // in the future of every partition
		{"replay-offset", "-1", flow.Invalid},
		{"replay-minutes-ago", `"yesterday at noon"`, flow.Invalid},
		{"replay-minutes-ago", "0", flow.Invalid},
		{"replay-minutes-ago", "1.5", flow.Invalid},
		{"replay-partition", `"p7"`, flow.Invalid}, // the topic has 3
		{"replay-partition", `"p12"`, flow.Invalid},
		{"m7-crash", "null", flow.Invalid},   // not running
		{"m2-restart", "null", flow.Invalid}, // not crashed
		{"m9-crash", "null", flow.NotFound},
		{"commit-mode", `"sometimes"`, flow.Invalid},
		{"rate", "2001", flow.Invalid},
		{"add-member", "3", flow.Invalid},
	} {
		err := flow.SetKnob(l.s, c.knob, json.RawMessage(c.raw))
		if flow.KindOf(err) != c.kind {
			t.Errorf("%s = %s: got %v (%s), want a %s error", c.knob, c.raw, err, flow.KindOf(err), c.kind)
		}
	}
	if after := committedOffsets(l); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("committed offsets moved from %v to %v", before, after)
	}
	if n := len(l.events.where(func(flow.Event) bool { return true })); n != events {
		t.Errorf("bad input emitted %d events", n-events)
	}
	for _, k := range l.s.Knobs() {
		if k.Name == "replay-partition" && k.Value != "all" || k.Name == "partitions" && k.Value != 3 {
			t.Errorf("knob %s changed to %v", k.Name, k.Value)
		}
	}

	// A valid replay does change things: everything is processed again.
	processed := l.part("processed")
	mustSet(t, l.s, "replay-earliest", nil)
	eventually(t, 20*time.Second, "every event processed again", func() bool { return l.counter("redeliveries") == processed })
	if d := l.counter("duplicates"); d != processed {
		t.Errorf("replay made %d duplicate side effects, want %d", d, processed)
	}
	eventually(t, 15*time.Second, "the group caught up after the replay", l.caughtUp)

	// A replay by time: everything was written in the last minute.
	redelivered := l.counter("redeliveries")
	mustSet(t, l.s, "replay-minutes-ago", 1)
	eventually(t, 20*time.Second, "everything processed a third time", func() bool {
		return l.counter("redeliveries") == redelivered+processed
	})
	eventually(t, 15*time.Second, "the group caught up after the replay", l.caughtUp)

	// And a replay of one partition from an offset inside it.
	redelivered, end := l.counter("redeliveries"), l.count("p1", "log-end")
	mustSet(t, l.s, "replay-partition", "p1")
	mustSet(t, l.s, "replay-offset", 1)
	eventually(t, 20*time.Second, "p1 from offset 1 processed again", func() bool {
		return l.counter("redeliveries") == redelivered+end-1
	})
	if n := len(l.events.where(func(ev flow.Event) bool { return ev.Detail.State == "replaying" })); n != 3 {
		t.Errorf("%d replay events, want 3", n)
	}
}

// committedOffsets is every partition's committed offset as the view shows it.
func committedOffsets(l *lab) []int64 {
	var out []int64
	for _, n := range l.s.View().Nodes {
		if n.Kind == "partition" {
			out = append(out, l.count(n.ID, "committed"))
		}
	}
	return out
}

// TestCutPathBuffersAndRecovers cuts the path from flowlab's clients to the
// brokers of a three-broker cluster, whose partitions have different leaders
// reached at the addresses the brokers advertise: the producer buffers and
// retries, and after the path is restored everything buffered arrives and the
// group processes it, with nothing lost.
func TestCutPathBuffersAndRecovers(t *testing.T) {
	l := startLabOn(t, 3, map[string]any{"rate": 100, "flush-each": false, "linger": 5})
	l.waitStable()
	eventually(t, 15*time.Second, "some events processed", func() bool { return l.part("processed") >= 50 })

	mustSet(t, l.s, "cut-path", nil)
	eventually(t, 10*time.Second, "order-service retrying with records buffered", func() bool {
		return l.node("order-service").State == "retrying" && l.count("order-service", "buffered") > 20
	})
	if st := l.node("orders").State; st != "unreachable" {
		t.Errorf("the topic node says %q while the path is cut", st)
	}
	// No broker answers any more: had a client reached a broker at the
	// address it advertises, around the path, acks would go on.
	acks := len(l.events.of(flow.KindAck))
	time.Sleep(500 * time.Millisecond)
	if n := len(l.events.of(flow.KindAck)); n != acks {
		t.Errorf("%d records acknowledged while the path was cut", n-acks)
	}
	// Members finish what they had fetched, then cannot fetch more.
	eventually(t, 10*time.Second, "m1 unreachable", func() bool { return l.node("m1").State == "unreachable" })
	for _, knob := range []string{"partitions", "replay-earliest"} {
		raw := map[string]string{"partitions": "2", "replay-earliest": "null"}[knob]
		if err := flow.SetKnob(l.s, knob, json.RawMessage(raw)); flow.KindOf(err) != flow.Invalid {
			t.Errorf("%s while the path is cut: got %v, want an invalid error", knob, err)
		}
	}

	mustSet(t, l.s, "restore-path", nil)
	eventually(t, 15*time.Second, "the buffer drained", func() bool { return l.count("order-service", "buffered") == 0 })
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(20 * time.Second)
	if f := l.part("failed") + l.part("refused"); f != 0 {
		t.Errorf("%d events failed through a short outage", f)
	}
	if st := l.node("order-service").State; st == "retrying" {
		t.Errorf("order-service still says retrying after the restore")
	}
}

// TestMembersJoinAndLeave adds members beyond the partition count, who stay
// idle, and removes one cleanly: its rebalance is quick because it says
// goodbye, and every rebalance is drawn with its before and after.
func TestMembersJoinAndLeave(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 50, "flush-each": false, "session-timeout": 10})
	l.waitStable()
	mustSet(t, l.s, "add-member", nil)
	mustSet(t, l.s, "add-member", nil)
	eventually(t, 15*time.Second, "two rebalances for m4 and m5 over", func() bool {
		return l.node("inventory").State == "stable" && l.node("m5").State != "joining" && l.node("m5").State != ""
	})
	idle := 0
	for _, m := range []string{"m1", "m2", "m3", "m4", "m5"} {
		if l.node(m).State == "idle" {
			idle++
		}
	}
	if idle != 2 {
		t.Errorf("%d idle members with 5 members on 3 partitions, want 2", idle)
	}
	for range 3 {
		mustSet(t, l.s, "add-member", nil)
	}
	if err := flow.SetKnob(l.s, "add-member", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("a ninth member: got %v, want an invalid error", err)
	}
	for range 4 {
		mustSet(t, l.s, "remove-member", nil)
	}
	eventually(t, 15*time.Second, "the group stable with m1 to m4", func() bool {
		_, shown := l.s.Stats().Nodes["m5"]
		return l.node("inventory").State == "stable" && !shown
	})
	last := l.events.of(flow.KindRebalance)
	r := last[len(last)-1]
	if !strings.Contains(r.Detail.Outcome, "m5 left") || !strings.Contains(r.Detail.Payload, "before: ") ||
		!strings.Contains(r.Detail.Payload, "→ after: m1") || r.Detail.LatencyMS > 5000 {
		t.Errorf("the clean leave's rebalance: %+v", r.Detail)
	}
	t.Logf("rebalance: %s: %s in %.0f ms", r.Detail.Outcome, r.Detail.Payload, r.Detail.LatencyMS)
}

// TestFewerPartitionsRecreatesTheTopic shrinks the topic: Kafka cannot, so
// the topic is deleted and created again, and what was still unprocessed in
// it is accounted for as deleted, never silently.
func TestFewerPartitionsRecreatesTheTopic(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 100, "flush-each": false, "m1-processing": 200})
	l.waitStable()
	eventually(t, 15*time.Second, "a backlog at slow m1", func() bool { return l.part("in-log") >= 20 })
	asked := time.Now()
	mustSet(t, l.s, "partitions", 2)
	// The recreation is a change in the background: the knob says 2 once
	// the topic has 2 partitions.
	eventually(t, 15*time.Second, "the topic recreated with 2 partitions", func() bool {
		k, _ := flow.FindKnob(l.s, "partitions")
		return k.Value == 2
	})
	shrunk := time.Now()
	t.Logf("recreating the topic took %v", shrunk.Sub(asked))
	if led := l.s.Stats().Ledger; !led.Balanced() || l.part("deleted") == 0 {
		t.Errorf("after recreating: ledger %+v", led)
	}
	for _, n := range l.s.View().Nodes {
		if n.ID == "p2" {
			t.Errorf("the view still draws p2")
		}
	}
	deleted := l.part("deleted")
	mustSet(t, l.s, "m1-processing", 0)
	mustSet(t, l.s, "rate", 0)
	eventually(t, 20*time.Second, "everything after the recreation processed", func() bool {
		led := l.s.Stats().Ledger
		return l.part("processed")+deleted+l.part("failed") == led.Total.Value && led.Balanced()
	})
	eventually(t, 15*time.Second, "the group stable on 2 partitions", func() bool {
		return l.node("inventory").State == "stable" && l.caughtUp()
	})
	t.Logf("stable and caught up %v later", time.Since(shrunk))
	for _, ev := range l.events.of(flow.KindPublish) {
		if ev.To == "p2" && ev.Time.After(shrunk) {
			t.Errorf("a record published to p2 after the topic shrank")
		}
	}
}

// TestFlushAfterEveryRecordCostsThroughput measures the article's flush()
// after every record against batching, over a path with 10 ms of latency:
// flushing pays the round trip once per record.
func TestFlushAfterEveryRecordCostsThroughput(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "path-latency": 10, "m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	sendRate := func() float64 {
		time.Sleep(time.Second) // let the new mode settle
		n0, t0 := l.s.Stats().Ledger.Total.Value, time.Now()
		time.Sleep(2 * time.Second)
		return float64(l.s.Stats().Ledger.Total.Value-n0) / time.Since(t0).Seconds()
	}
	mustSet(t, l.s, "flush-each", true)
	mustSet(t, l.s, "rate", 2000)
	flushing := sendRate()
	mustSet(t, l.s, "flush-each", false)
	mustSet(t, l.s, "linger", 5)
	batching := sendRate()
	t.Logf("asked 2000/s with 10 ms to the broker: flush after every record %.0f/s, batching %.0f/s", flushing, batching)
	if flushing > 150 || batching < 5*flushing {
		t.Errorf("flush after every record %.0f/s, batching %.0f/s: want flushing near 1/RTT and batching far faster", flushing, batching)
	}
}

// TestSendThousandAtOnce presses send-1000 with the rate at 0: each press
// sends 1000 order events beside the rate and faster than its 2000/s cap,
// and every one is accounted for: acknowledged, processed once, none refused
// or failed. A burst while flushing after every record is accounted for the
// same way, only slower.
func TestSendThousandAtOnce(t *testing.T) {
	idle, err := asyncmsg.Open(asyncmsg.Config{Brokers: []string{"127.0.0.1:1"}, Lab: mustLab(t),
		Emit: flow.NewEmitter(mustLab(t), asyncmsg.Name, &events{})})
	if err != nil {
		t.Fatal(err)
	}
	k, err := flow.FindKnob(idle, "send-1000")
	if err != nil || k.Type != flow.ActionKnob || k.Group != "order-service" || k.Help == "" {
		t.Errorf("send-1000 declared as %+v (%v), want a button of order-service with help", k, err)
	}
	if err := flow.SetKnob(idle, "send-1000", nil); flow.KindOf(err) != flow.Unavailable {
		t.Errorf("send-1000 before Run: got %v, want an unavailable error", err)
	}

	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5,
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	mustSet(t, l.s, "send-1000", nil)
	mustSet(t, l.s, "send-1000", nil)
	l.waitAllProcessed(30 * time.Second)
	if total := l.s.Stats().Ledger.Total.Value; total != 2000 {
		t.Errorf("two presses produced %d order events, want 2000", total)
	}
	// A member may process a record before the producer has handled the
	// broker's answer for it.
	eventually(t, 5*time.Second, "every order event acknowledged", func() bool { return l.counter("acked") == 2000 })
	if f, r := l.part("failed"), l.part("refused"); f != 0 || r != 0 {
		t.Errorf("failed %d, refused %d; want none", f, r)
	}
	if d := l.counter("redeliveries"); d != 0 {
		t.Errorf("%d records processed twice", d)
	}
	pubs := l.events.of(flow.KindPublish)
	if len(pubs) != 2000 {
		t.Fatalf("%d publish events for 2000 order events", len(pubs))
	}
	// At the rate's cap of 2000/s they would take a second.
	span := pubs[len(pubs)-1].Time.Sub(pubs[0].Time)
	t.Logf("2000 order events handed to the producer in %v", span)
	if span > 900*time.Millisecond {
		t.Errorf("two bursts took %v to send: paced like the rate, not at once", span)
	}
	eventually(t, 5*time.Second, "order-service idle after the burst", func() bool {
		return l.node("order-service").State == "idle"
	})

	mustSet(t, l.s, "flush-each", true)
	mustSet(t, l.s, "send-1000", nil)
	eventually(t, 5*time.Second, "order-service sending the burst", func() bool {
		return l.node("order-service").State == "sending"
	})
	eventually(t, 60*time.Second, "the flushed burst processed and acknowledged", func() bool {
		return l.part("processed") == 3000 && l.counter("acked") == 3000
	})
	if pubs := l.events.of(flow.KindPublish); len(pubs) == 3000 {
		t.Logf("1000 order events flushed one by one in %v", pubs[2999].Time.Sub(pubs[2000].Time))
	}
	led := l.s.Stats().Ledger
	if !led.Balanced() || led.Total.Value != 3000 || l.counter("acked") != 3000 {
		t.Errorf("after a flushed burst: ledger %+v, acked %d; want 3000 produced, acked and processed", led, l.counter("acked"))
	}
}

// mustLab is a fresh lab with a random id.
func mustLab(t testing.TB) *flow.Lab {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	l, err := flow.NewLab("t" + hex.EncodeToString(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLongOutageFailsRecordsWithoutHanging keeps the path cut past the
// producer's delivery timeout, shortened to 3 s, while order-service flushes
// after every record, as in the article: the records fail and are counted as
// failed, the producer never hangs, and after the restore new records go
// through.
func TestLongOutageFailsRecordsWithoutHanging(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 50, "flush-each": true, "delivery-timeout": 3})
	l.waitStable()
	eventually(t, 15*time.Second, "some events processed", func() bool { return l.part("processed") >= 10 })
	mustSet(t, l.s, "cut-path", nil)
	eventually(t, 20*time.Second, "records failed after the delivery timeout", func() bool { return l.part("failed") > 0 })
	mustSet(t, l.s, "restore-path", nil)
	total := l.s.Stats().Ledger.Total.Value
	eventually(t, 15*time.Second, "new events produced and processed", func() bool {
		return l.counter("acked") > 0 && l.part("processed") > 10 && l.s.Stats().Ledger.Total.Value > total+10
	})
	mustSet(t, l.s, "rate", 0)
	eventually(t, 20*time.Second, "nothing waiting or unprocessed", func() bool {
		return l.part("waiting") == 0 && l.part("in-log") == 0
	})
	// A record the producer gave up on may still have reached the log (its
	// request went out, the answer was cut off): once a member processes it,
	// the ledger counts it processed. So every record still counted failed
	// has its error event, and there may be more error events than that.
	errs := l.events.of(flow.KindError)
	if len(errs) == 0 || int64(len(errs)) < l.part("failed") {
		t.Fatalf("%d error events for %d failed records", len(errs), l.part("failed"))
	}
	t.Logf("%d error events, %d records still failed: %s", len(errs), l.part("failed"), errs[0].Detail.Error)
}
