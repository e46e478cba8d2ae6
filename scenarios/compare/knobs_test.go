package compare_test

import (
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// A timeout shorter than inventory's work, with retries: every attempt
// gives up, yet inventory makes every reservation it was asked for, so each
// order fails at its caller with its stock reserved three times.
func TestHTTPRetriesAfterATimeoutReserveAgain(t *testing.T) {
	s := start(t, map[string]any{"load.rate": 0, "http.timeout_ms": 100, "http.retries": 2, "inventory.latency_ms": 300})
	rabbittest.MustSet(t, s, "load.rate", 10)
	rabbittest.WaitFor(t, s, 10*time.Second, "some orders", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "http.placed") >= 5
	})
	rabbittest.MustSet(t, s, "load.rate", 0)
	st := rabbittest.WaitFor(t, s, 10*time.Second, "every attempt's reservation", func(st flow.Stats) bool {
		n := rabbittest.Counter(st, "http.placed")
		return rabbittest.Counter(st, "http.failed") == n && fact(t, st, "http-inventory", "duplicates") == 2*n
	})
	n := rabbittest.Counter(st, "http.placed")
	if r, a, e := fact(t, st, "http-inventory", "reserved"), rabbittest.Counter(st, "http.accepted"), fact(t, st, "http-email", "sent"); r != n || a != 0 || e != 0 {
		t.Errorf("%d orders: %d reserved once, %d accepted, %d confirmations; want all reserved, none accepted, none sent", n, r, a, e)
	}
	if d := rabbittest.Counter(st, "http.duplicates"); d != 2*n {
		t.Errorf("http.duplicates = %d, want %d (two retries an order)", d, 2*n)
	}
}

// Inventory goes down in the middle of a slow batch: committed after the
// work, the rest is read again and done; committed on poll, it is lost, and
// counted.
func TestKafkaCommitModeDecidesWhatAStoppedConsumerLoses(t *testing.T) {
	for _, tc := range []struct {
		mode string
		lost bool
	}{{"after-work", false}, {"on-poll", true}} {
		t.Run(tc.mode, func(t *testing.T) {
			s := start(t, map[string]any{"load.rate": 0, "kafka.commit": tc.mode, "inventory.latency_ms": 250})
			rabbittest.MustSet(t, s, "load.rate", 40)
			rabbittest.WaitFor(t, s, 10*time.Second, "inventory in the middle of a batch", func(st flow.Stats) bool {
				return fact(t, st, "kafka-inventory", "in-hand") >= 5
			})
			rabbittest.MustSet(t, s, "load.rate", 0)
			rabbittest.MustSet(t, s, "inventory.up", false)
			rabbittest.MustSet(t, s, "inventory.latency_ms", 0)
			rabbittest.WaitFor(t, s, 10*time.Second, "inventory down", func(st flow.Stats) bool {
				return st.Nodes["kafka-inventory"].State == "down"
			})
			rabbittest.MustSet(t, s, "inventory.up", true)
			st := rabbittest.WaitFor(t, s, 15*time.Second, "every order fulfilled or lost", settled)
			rabbittest.MustBalance(t, st)
			lost, dups := rabbittest.Counter(st, "kafka.lost"), rabbittest.Counter(st, "kafka.duplicates")
			if tc.lost && lost == 0 {
				t.Errorf("committed on poll, nothing was lost:\n%s", rabbittest.Describe(st))
			}
			if !tc.lost && (lost != 0 || dups != 0) {
				t.Errorf("committed after the work, %d lost and %d duplicates:\n%s", lost, dups, rabbittest.Describe(st))
			}
		})
	}
}

// Slowing inventory acts on all three columns at once: HTTP's callers wait
// for every reservation, while the brokers' callers are answered as soon as
// the order is stored, and the wait moves into the brokers' backlogs.
func TestSlowInventorySlowsOnlyTheHTTPCaller(t *testing.T) {
	s := start(t, map[string]any{"load.rate": 10, "inventory.latency_ms": 400})
	st := rabbittest.WaitFor(t, s, 15*time.Second, "backlogs at the brokers' inventory", func(st flow.Stats) bool {
		return fact(t, st, "rabbitmq", "backlog") >= 10 && fact(t, st, "kafka", "backlog") >= 10 && rabbittest.Counter(st, "http.accepted") >= 3
	})
	p99 := func(node string) float64 {
		v, _ := st.Nodes[node].Value("p99-ms")
		return v.(float64)
	}
	if p99("http") < 400 {
		t.Errorf("HTTP caller p99 %.0f ms, under inventory's 400 ms a reservation", p99("http"))
	}
	for _, c := range []string{"rabbitmq", "kafka"} {
		if p99(c) >= 400 {
			t.Errorf("%s caller p99 %.0f ms: its callers waited for inventory", c, p99(c))
		}
	}
	if b := fact(t, st, "http", "backlog"); b > 10 {
		t.Errorf("HTTP has %d calls waiting: only those under way (about 4 at 10 a second) should", b)
	}
}

// Auto-acked from a durable queue, what the broker had already sent to a
// slow inventory that then goes away is lost, and counted; acked after the
// work, it is delivered again.
func TestRabbitAckModeDecidesWhatAStoppedConsumerLoses(t *testing.T) {
	for _, tc := range []struct {
		ack  string
		lost bool
	}{{"after-work", false}, {"on-delivery", true}} {
		t.Run(tc.ack, func(t *testing.T) {
			s := start(t, map[string]any{"load.rate": 0, "rabbitmq.ack": tc.ack, "inventory.latency_ms": 200})
			rabbittest.MustSet(t, s, "load.rate", 40)
			rabbittest.WaitFor(t, s, 10*time.Second, "a backlog at inventory", func(st flow.Stats) bool {
				return fact(t, st, "rabbitmq", "backlog") >= 20 && fact(t, st, "rabbitmq-inventory", "reserved") >= 3
			})
			rabbittest.MustSet(t, s, "load.rate", 0)
			rabbittest.MustSet(t, s, "inventory.up", false)
			rabbittest.MustSet(t, s, "inventory.latency_ms", 0)
			rabbittest.WaitFor(t, s, 10*time.Second, "inventory down", func(st flow.Stats) bool {
				return st.Nodes["rabbitmq-inventory"].State == "down"
			})
			rabbittest.MustSet(t, s, "inventory.up", true)
			// One more order after inventory is back: once it arrives,
			// any earlier one that has not never will.
			rabbittest.WaitFor(t, s, 10*time.Second, "inventory back", func(st flow.Stats) bool {
				return st.Nodes["rabbitmq-inventory"].State == "up"
			})
			rabbittest.MustSet(t, s, "load.rate", 5)
			before := rabbittest.Counter(s.Stats(), "rabbitmq.placed")
			rabbittest.WaitFor(t, s, 10*time.Second, "an order after the return", func(st flow.Stats) bool {
				return rabbittest.Counter(st, "rabbitmq.placed") > before
			})
			rabbittest.MustSet(t, s, "load.rate", 0)
			st := rabbittest.WaitFor(t, s, 15*time.Second, "every order fulfilled or lost", settled)
			rabbittest.MustBalance(t, st)
			lost, dups := rabbittest.Counter(st, "rabbitmq.lost"), rabbittest.Counter(st, "rabbitmq.duplicates")
			if tc.lost && lost == 0 {
				t.Errorf("auto-acked, nothing was lost:\n%s", rabbittest.Describe(st))
			}
			if !tc.lost && lost != 0 {
				t.Errorf("acked after the work, %d lost (%d duplicates):\n%s", lost, dups, rabbittest.Describe(st))
			}
		})
	}
}

// A command that does not apply is refused, and changes nothing.
func TestBadCommandsChangeNothing(t *testing.T) {
	s := start(t, map[string]any{"load.rate": 0})
	for _, c := range []struct {
		knob  string
		value any
	}{
		{"inventory.up", true},        // already up
		{"rabbitmq.queue", "lazy"},    // no such kind
		{"rabbitmq.ack", "sometimes"}, // no such mode
		{"kafka.commit", "never"},     // no such mode
		{"http.retries", 9},           // out of range
		{"inventory.latency_ms", -1},  // out of range
		{"load.rate", "fast"},         // not a number
		{"inventory.down", true},      // no such knob
	} {
		before := s.Knobs()
		err := rabbittest.Set(s, c.knob, c.value)
		if err == nil {
			t.Errorf("set %s to %v: accepted", c.knob, c.value)
			continue
		}
		if k := flow.KindOf(err); k != flow.Invalid && k != flow.NotFound {
			t.Errorf("set %s to %v: %v (%s), want invalid or not found", c.knob, c.value, err, k)
		}
		if after := s.Knobs(); !sameValues(before, after) {
			t.Errorf("set %s to %v was refused (%v) yet changed the knobs", c.knob, c.value, err)
		}
	}
	rabbittest.MustSet(t, s, "inventory.up", false)
	if err := rabbittest.Set(s, "inventory.up", false); flow.KindOf(err) != flow.Invalid {
		t.Errorf("taking inventory down twice: %v, want invalid", err)
	}
}

func sameValues(a, b []flow.Knob) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}
