package asyncmsg_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
)

// TestRestartBehindACrashedMemberNeverBlocks is issue 8's repro: the
// article's set-up, a fourth member, m2 crashed, then the reliable preset,
// which restarts the members while the crashed one is still in the group
// and the broker holds every join until its session times out. Every
// command answers at once, cutting and restoring the path included, the
// restart announces its end, and the group has every partition again within
// the crashed member's session timeout and a few seconds, with no member left
// behind in it.
func TestRestartBehindACrashedMemberNeverBlocks(t *testing.T) {
	const session = 4 * time.Second // m2's: the article's 45 s, shortened
	l := startLab(t, map[string]any{"rate": 20, "flush-each": false})
	if err := flow.ApplyPreset(l.s, "article"); err != nil {
		t.Fatal(err)
	}
	// The article runs no consumer; its members get its defaults.
	mustSet(t, l.s, "members", 3)
	mustSet(t, l.s, "session-timeout", int(session.Seconds()))
	eventually(t, 20*time.Second, "m1 to m3 consuming in a stable group", func() bool {
		return l.node("inventory").State == "stable" && l.node("m1").State == "consuming" &&
			l.node("m2").State == "consuming" && l.node("m3").State == "consuming" &&
			l.word("inventory", "change") == ""
	})
	mustSet(t, l.s, "add-member", nil)
	eventually(t, 20*time.Second, "m4 in a stable group", func() bool {
		return l.node("inventory").State == "stable" && l.node("m4").State != "joining" && l.node("m4").State != ""
	})
	mustSet(t, l.s, "m2-crash", nil)
	crashed := time.Now()

	answers := func(what string, do func() error) {
		t.Helper()
		began := time.Now()
		if err := do(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("%s took %v while the members restart", what, took)
		}
	}
	answers("the reliable preset", func() error { return flow.ApplyPreset(l.s, "reliable") })
	// By now the restarted members' joins wait at the broker for m2: a
	// second restart must not wait with them.
	time.Sleep(500 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		answers("the reliable preset again", func() error { return flow.ApplyPreset(l.s, "reliable") })
	}()
	answers("cut-path", func() error { return flow.SetKnob(l.s, "cut-path", nil) })
	answers("restore-path", func() error { return flow.SetKnob(l.s, "restore-path", nil) })
	answers("rate", func() error { return flow.SetKnob(l.s, "rate", []byte("30")) })
	<-done

	// 9 s of slack for a loaded machine: a member left behind would hold
	// the group for the reliable preset's 10 s session timeout more.
	eventually(t, session+9*time.Second-time.Since(crashed), "every partition owned by a live member", func() bool {
		for _, p := range []string{"p0", "p1", "p2"} {
			if st := l.node(p).State; st == "unassigned" || st == "orphaned" {
				return false
			}
		}
		return l.node("inventory").State == "stable" && l.word("inventory", "change") == "" && l.word("inventory", "changes-waiting") == ""
	})
	t.Logf("the group was whole %.1f s after m2 crashed", time.Since(crashed).Seconds())
	// The reliable preset runs three members, crashed m2 included: the
	// newest, m4, left.
	if got := groupMembers(t, l); !slices.Equal(got, []string{"inventory-m1", "inventory-m3"}) {
		t.Errorf("the group holds %v, want m1 and m3 once each", got)
	}
	ended := l.events.where(func(ev flow.Event) bool {
		return ev.Kind == flow.KindState && ev.Detail.Node == "inventory" && ev.Detail.State == "changed" &&
			strings.Contains(ev.Detail.Payload, "commit-mode")
	})
	if len(ended) == 0 || !strings.Contains(ended[0].Detail.Payload, "commit-mode changed; session-timeout changed") {
		t.Errorf("no announced end of the preset's one merged restart: %+v", ended)
	}
}

// groupMembers is the client ids of the group's members, as the broker
// describes it.
func groupMembers(t *testing.T, l *lab) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(l.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	group := "inventory" + strings.TrimPrefix(l.topic, "orders")
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range described[group].Members {
		ids = append(ids, m.ClientID)
	}
	slices.Sort(ids)
	return ids
}

// TestStopIsPromptWithThePathCut restarts the members while the path to the
// broker is cut, so that their goodbyes cannot arrive: the command answers
// at once all the same, and Run, stopped during the restart, returns within a
// few seconds, as a prompt stop of the server needs.
func TestStopIsPromptWithThePathCut(t *testing.T) {
	c, err := kfake.NewCluster(kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := mustLab(t)
	s, err := asyncmsg.Open(asyncmsg.Config{Brokers: c.ListenAddrs(), Lab: l, Emit: flow.NewEmitter(l, asyncmsg.Name, &events{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	lab := &lab{t: t, s: s}
	eventually(t, 15*time.Second, "m1 to m3 consuming", func() bool {
		return lab.node("m1").State == "consuming" && lab.node("m2").State == "consuming" && lab.node("m3").State == "consuming"
	})
	mustSet(t, s, "rate", 100)
	mustSet(t, s, "cut-path", nil)
	asked := time.Now()
	mustSet(t, s, "commit-mode", "after-processing") // a restart whose goodbyes cannot arrive
	if took := time.Since(asked); took > time.Second {
		t.Errorf("the restart's command took %v to answer", took)
	}
	time.Sleep(200 * time.Millisecond)

	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		t.Logf("Run returned %v after its context ended", time.Since(began))
	case <-time.After(4 * time.Second):
		t.Fatal("Run did not return within 4 s of its context ending")
	}
}
