package asyncmsg_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

// TestPartitionsTellUnprocessedFromUncommitted slows the member of one
// partition: only that partition is behind, while the others, whose lag is
// only what auto-commit has not stored yet, are caught up with their commit
// pending. Once the load stops the partitions' unprocessed records add up to
// the ledger's "in the log, not yet processed", and to 0 when drained.
func TestPartitionsTellUnprocessedFromUncommitted(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 150, "flush-each": false, "linger": 5,
		"m1-processing": 100, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	slow := fmt.Sprintf("p%d", fact[[]int](l.node("m1"), "assigned")[0])
	eventually(t, 20*time.Second, slow+" behind, a healthy partition caught up with its commit pending", func() bool {
		st := l.s.Stats()
		if ns := st.Nodes[slow]; ns.State != "behind" || fact[int64](ns, "unprocessed") < 20 {
			return false
		}
		for _, p := range []string{"p0", "p1", "p2"} {
			ns := st.Nodes[p]
			if p == slow || ns.State != "caught up" {
				continue
			}
			lag, pending := fact[int64](ns, "lag"), fact[int64](ns, "commit-pending")
			if lag > 0 && fact[int64](ns, "unprocessed") == 0 && pending == lag {
				t.Logf("%s: %v", p, ns.Badges())
				return true
			}
		}
		return false
	})
	for _, p := range []string{"p0", "p1", "p2"} {
		if ns := l.node(p); p != slow && ns.State == "behind" {
			t.Errorf("%s, whose member keeps up, is behind: %v", p, ns.Badges())
		}
	}

	mustSet(t, l.s, "rate", 0)
	eventually(t, 10*time.Second, "the partitions' unprocessed records equal to the ledger's", func() bool {
		st := l.s.Stats()
		var sum int64
		for _, p := range []string{"p0", "p1", "p2"} {
			sum += fact[int64](st.Nodes[p], "unprocessed")
		}
		inLog := int64(-1)
		for _, c := range st.Ledger.Parts {
			if c.Name == "in-log" {
				inLog = c.Value
			}
		}
		return inLog > 0 && sum == inLog && st.Ledger.Parts[0].Value == 0 // nothing waiting for the broker
	})
	mustSet(t, l.s, "m1-processing", 0)
	eventually(t, 20*time.Second, "every partition drained, caught up and committed", func() bool {
		if l.part("in-log") != 0 {
			return false
		}
		for _, p := range []string{"p0", "p1", "p2"} {
			if ns := l.node(p); ns.State != "caught up" || fact[int64](ns, "unprocessed") != 0 || fact[int64](ns, "lag") != 0 {
				return false
			}
		}
		return true
	})
}

// TestBusyMemberIsNotUnreachable drops a member's connections once, as a
// reset on a busy network would; it dials again at once and keeps fetching,
// so it never says "unreachable". Only a member that gets no answer from the
// broker is unreachable (TestCutPathBuffersAndRecovers).
func TestBusyMemberIsNotUnreachable(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0, "flush-each": false, "linger": 5,
		"m1-processing": 0, "m2-processing": 0, "m3-processing": 0})
	l.waitStable()
	mustSet(t, l.s, "send-1000", nil)
	l.s.DropConnections(0)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if ns := l.node("m1"); ns.State == "unreachable" {
			t.Fatalf("m1 unreachable after one dropped connection, with the broker answering: %v", ns.Badges())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.waitAllProcessed(20 * time.Second)
}

// TestGroupSaysWhenEveryMemberIsGone crashes every member: the group is
// empty, not stable; the crashed members hold their partitions until the
// broker drops them after the session timeout, which the group says with its
// value, and the rebalance that ends it takes that long.
func TestGroupSaysWhenEveryMemberIsGone(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 20, "flush-each": false, "session-timeout": 3})
	l.waitStable()
	for _, m := range []string{"m1", "m2", "m3"} {
		mustSet(t, l.s, m+"-crash", nil)
	}
	inv := l.node("inventory")
	if inv.State != "empty" || fact[int64](inv, "members") != 0 || fact[string](inv, "waiting-for") != "m1 m2 m3" ||
		fact[float64](inv, "session-left-s") <= 0 || fact[int64](inv, "session-timeout-s") != 3 {
		t.Errorf("with every member just crashed, the group: %s %v", inv.State, inv.Facts)
	}
	if b := strings.Join(inv.Badges(), " | "); !strings.Contains(b, "session timeout 3 s") {
		t.Errorf("the group does not say it waits for the session timeout: %q", b)
	}
	crashed := time.Now()
	eventually(t, 10*time.Second, "the broker dropping the crashed members", func() bool {
		return fact[string](l.node("inventory"), "waiting-for") == ""
	})
	inv = l.node("inventory")
	if inv.State != "empty" || fact[string](inv, "no-members-why") == "" {
		t.Errorf("after the session timeout the group: %s %v", inv.State, inv.Badges())
	}
	for _, p := range []string{"p0", "p1", "p2"} {
		if st := l.node(p).State; st != "unassigned" {
			t.Errorf("%s is %s with no members", p, st)
		}
	}
	var r flow.Event
	eventually(t, 2*time.Second, "the rebalance to no members drawn", func() bool {
		rs := l.events.of(flow.KindRebalance)
		if len(rs) == 0 {
			return false
		}
		r = rs[len(rs)-1]
		return strings.Contains(r.Detail.Outcome, "m3 crashed")
	})
	took := time.Duration(r.Detail.LatencyMS * float64(time.Millisecond))
	t.Logf("%s: %s (took %v)", r.Detail.Outcome, r.Detail.Payload, took)
	if took < 2500*time.Millisecond || took > time.Since(crashed)+time.Second ||
		!strings.Contains(r.Detail.Payload, "no members") || !strings.Contains(r.Detail.Payload, "session timeout (3 s)") {
		t.Errorf("the rebalance to no members: %+v", r.Detail)
	}

	mustSet(t, l.s, "m1-restart", nil)
	eventually(t, 15*time.Second, "m1 consuming every partition", func() bool {
		return l.node("inventory").State == "stable" && len(fact[[]int](l.node("m1"), "assigned")) == 3
	})
}

// TestRestartSaysItWaitsForTheSessionTimeout crashes m2 and restarts it at
// once: the group rebalances only once the broker drops the crashed m2, and
// says so while it waits.
func TestRestartSaysItWaitsForTheSessionTimeout(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 20, "flush-each": false, "session-timeout": 4})
	l.waitStable()
	mustSet(t, l.s, "m2-crash", nil)
	mustSet(t, l.s, "m2-restart", nil)
	inv := l.node("inventory")
	if inv.State != "rebalancing" || fact[string](inv, "waiting-for") != "m2" || fact[float64](inv, "session-left-s") <= 0 {
		t.Errorf("restarting m2 while the broker still counts the crashed one: %s %v", inv.State, inv.Facts)
	}
	want := "waiting for crashed m2 to time out | session timeout 4 s: "
	if b := strings.Join(inv.Badges(), " | "); !strings.Contains(b, want) {
		t.Errorf("the group shows %q, want it to say %q", b, want)
	}
	eventually(t, 15*time.Second, "the group stable again with m2", func() bool {
		inv := l.node("inventory")
		return inv.State == "stable" && fact[string](inv, "waiting-for") == "" && len(fact[[]int](l.node("m2"), "assigned")) > 0
	})
}

// TestBurstShowsItsDurationAndRate sends 1000 order events at the defaults,
// flushing after every record as the article does, then batched: each
// burst's duration and rate are facts of order-service, and the flushed
// burst takes many times longer. At the defaults the path to the broker
// adds 1 ms, as a network would: loopback alone makes a flush cheap.
func TestBurstShowsItsDurationAndRate(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 0})
	l.waitStable()
	burst := func() float64 {
		before := fact[float64](l.node("order-service"), "last-burst-s")
		mustSet(t, l.s, "send-1000", nil)
		eventually(t, 30*time.Second, "the burst done", func() bool {
			ns := l.node("order-service")
			return fact[int64](ns, "unsent") == 0 && fact[int64](ns, "last-burst") == 1000 &&
				fact[float64](ns, "last-burst-s") != before &&
				slices.ContainsFunc(ns.Badges(), func(b string) bool { return strings.HasPrefix(b, "burst 1000: ") })
		})
		ns := l.node("order-service")
		secs, rate := fact[float64](ns, "last-burst-s"), fact[float64](ns, "last-burst-per-s")
		t.Logf("%v", ns.Badges())
		if rate < 1000/secs*0.99 || rate > 1000/secs*1.01 {
			t.Errorf("last burst: 1000 in %.3f s shown as %.0f/s", secs, rate)
		}
		return secs
	}
	flushed := burst()
	mustSet(t, l.s, "flush-each", false)
	time.Sleep(200 * time.Millisecond)
	batched := burst()
	t.Logf("1000 order events: flushed after every record %.3f s, batched %.3f s (%.0f×)", flushed, batched, flushed/batched)
	// Measured at the defaults on a busy 2-core machine: 48× to 144×.
	if flushed < 10*batched {
		t.Errorf("at the defaults a flushed burst took %.3f s and a batched one %.3f s: the flush's cost does not show", flushed, batched)
	}
}

// TestArticleHasNoConsumer applies the article's preset: its "Consumer" is a
// copy of its producer, so no member runs, the group says why, and records
// pile up unprocessed until the learner adds a member; the group then says
// it is catching up, eventual consistency, while the backlog drains.
func TestArticleHasNoConsumer(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 30, "flush-each": false})
	l.waitStable()
	if err := flow.ApplyPreset(l.s, "article"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "no members, records piling up", func() bool {
		st := l.s.Stats()
		_, m1 := st.Nodes["m1"]
		inv := st.Nodes["inventory"]
		return !m1 && inv.State == "empty" && strings.Contains(fact[string](inv, "no-members-why"), "copies its producer") &&
			fact[int64](st.Nodes["p0"], "unprocessed") > 20 && st.Nodes["p0"].State == "unassigned"
	})
	if k, _ := flow.FindKnob(l.s, "members"); k.Value != 0 {
		t.Errorf("the members knob says %v under the article's preset", k.Value)
	}
	before := l.part("in-log")
	time.Sleep(1500 * time.Millisecond)
	if after := l.part("in-log"); after <= before {
		t.Errorf("in the log, not yet processed: %d then %d, want it rising with no consumer", before, after)
	}
	mustSet(t, l.s, "add-member", nil)
	var caption string
	eventually(t, 30*time.Second, "the group catching up, eventual consistency", func() bool {
		inv := l.node("inventory")
		if n := fact[int64](inv, "catching-up"); n > 0 {
			for _, b := range inv.Badges() {
				if strings.Contains(b, "eventual consistency") && strings.Contains(b, fmt.Sprint(n)) {
					caption = b
				}
			}
		}
		return caption != ""
	})
	t.Logf("the group says: %s", caption)
	mustSet(t, l.s, "rate", 0)
	l.waitAllProcessed(30 * time.Second)
	eventually(t, 5*time.Second, "no longer catching up", func() bool { return fact[int64](l.node("inventory"), "catching-up") == 0 })
}
