package asyncmsg_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"flowlab/flow"
)

// Walkthrough checks read node facts by name, so every node sends the same
// facts, of the same types and in the same order, whatever its mode: at the
// defaults, under each preset, with a member crashed, while a change is in
// progress and with the path cut. Partitions carry their log end, commit
// and lag, members the partitions assigned to them, as typed values.
func TestEveryNodeSendsTheSameFactsInEveryMode(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 20})
	modes := map[string]flow.Stats{}
	l.waitStable()
	eventually(t, 10*time.Second, "records in every partition, as the broker says", func() bool {
		return l.count("p0", "log-end") > 0 && l.count("p1", "log-end") > 0 && l.count("p2", "log-end") > 0
	})
	st := l.s.Stats()
	modes["defaults"] = st
	mustAssignEveryPartitionOnce(t, st)
	p0 := st.Nodes["p0"]
	end, committed, lag := fact[int64](p0, "log-end"), fact[int64](p0, "committed"), fact[int64](p0, "lag")
	if lag != end-max(committed, 0) || fact[int64](p0, "unprocessed")+fact[int64](p0, "commit-pending") != lag {
		t.Errorf("p0: end %d, committed %d, lag %d: %v", end, committed, lag, p0.Facts)
	}
	commit := fmt.Sprintf("commit %d", committed)
	if committed < 0 {
		commit = "commit none"
	}
	if got, want := p0.Badges(), []string{fmt.Sprintf("end %d", end), commit, fmt.Sprintf("lag %d", lag)}; len(got) < 3 || !slices.Equal(got[:3], want) {
		t.Errorf("p0 shows %q, want %q", got, want)
	}

	if err := flow.ApplyPreset(l.s, "article"); err != nil {
		t.Fatal(err)
	}
	// The article's Consumer is a copy of its producer: no member runs.
	eventually(t, 20*time.Second, "the article's group empty", func() bool {
		return l.word("inventory", "change") == "" && l.word("inventory", "changes-waiting") == "" && l.node("inventory").State == "empty"
	})
	modes["article"] = l.s.Stats()

	if err := flow.ApplyPreset(l.s, "reliable"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the reliable preset's members consuming", func() bool {
		return l.word("inventory", "change") == "" && l.word("inventory", "changes-waiting") == "" &&
			l.node("inventory").State == "stable" && l.node("m1").State == "consuming"
	})
	modes["reliable"] = l.s.Stats()

	mustSet(t, l.s, "m2-crash", nil)
	eventually(t, 5*time.Second, "m2 crashed", func() bool { return l.node("m2").State == "crashed" })
	st = l.s.Stats()
	modes["a member crashed"] = st
	m2 := st.Nodes["m2"]
	if b := m2.Badges(); len(b) == 0 || b[0] != fmt.Sprintf("%d done, never committed", fact[int64](m2, "uncommitted")) {
		t.Errorf("crashed m2 shows %q", b)
	}

	mustSet(t, l.s, "cut-path", nil)
	eventually(t, 5*time.Second, "the topic unreachable", func() bool { return l.node("orders").State == "unreachable" })
	st = l.s.Stats()
	modes["path cut"] = st
	if !fact[bool](st.Nodes["orders"], "path-cut") || !slices.Contains(st.Nodes["orders"].Badges(), "path from flowlab cut") {
		t.Errorf("orders with the path cut: %+v", st.Nodes["orders"])
	}

	// The producer's replacement is asked for: right after, it waits its
	// turn or is in progress (with the path cut its old producer may have
	// nothing left to flush, and the change ends at once).
	mustSet(t, l.s, "acks", "leader")
	st = l.s.Stats()
	modes["a change asked for"] = st
	if b := st.Nodes["order-service"].Badges(); !slices.Contains(b, "in progress: acks changed") && !slices.Contains(b, "waiting: acks changed") {
		t.Errorf("order-service shows %q right after the change was asked for", b)
	}
	mustSet(t, l.s, "restore-path", nil)

	want := factNames(modes["defaults"])
	for mode, st := range modes {
		for node, names := range factNames(st) {
			if ref, ok := want[node]; ok && !slices.Equal(names, ref) {
				t.Errorf("%s: %s sends %v, at defaults %v", mode, node, names, ref)
			}
		}
	}
	for _, n := range l.s.View().Nodes {
		if _, ok := want[n.ID]; !ok && n.Kind != "member" { // a member slot not started is not drawn
			t.Errorf("node %s sends no facts at defaults", n.ID)
		}
	}
}

// mustAssignEveryPartitionOnce checks the members' assigned facts: between
// them, each partition once, as numbers, and drawn as the diagram names them.
func mustAssignEveryPartitionOnce(t *testing.T, st flow.Stats) {
	t.Helper()
	var all []int
	for _, m := range []string{"m1", "m2", "m3"} {
		ns := st.Nodes[m]
		ps := fact[[]int](ns, "assigned")
		all = append(all, ps...)
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = fmt.Sprintf("p%d", p)
		}
		if b := ns.Badges(); len(ps) == 0 || len(b) == 0 || b[0] != strings.Join(ids, " ") {
			t.Errorf("%s assigned %v shows %q", m, ps, b)
		}
	}
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2}) {
		t.Errorf("members assigned %v between them, want [0 1 2]", all)
	}
}

// fact is a node's fact of type T; the zero T when it sends none of that type.
func fact[T any](ns flow.NodeState, name string) T {
	v, _ := ns.Value(name)
	t, _ := v.(T)
	return t
}

// factNames lists each node's facts as "name (Go type)", in order.
func factNames(st flow.Stats) map[string][]string {
	out := map[string][]string{}
	for node, ns := range st.Nodes {
		for _, f := range ns.Facts {
			out[node] = append(out[node], fmt.Sprintf("%s (%T)", f.Name, f.Value))
		}
	}
	return out
}
