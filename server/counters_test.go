package main

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"flowlab/flow"
)

// counterScheme is the naming scheme of docs/COUNTERS.md: lowercase words
// joined by '-', and an optional node id before a '.'.
var counterScheme = regexp.MustCompile(`^([a-z][a-z0-9]*(-[a-z0-9]+)*\.)?[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// docLine is a listed name: "- `name` — …" is a counter; "- `name` (total) —
// …", (part) and (apart) are the ledger's total, parts and duplicates.
var docLine = regexp.MustCompile("^- `([^`]+)`(?: \\((total|part|apart)\\))? — ")

// documentedNames reads docs/COUNTERS.md: per scenario, the set of
// "kind name" it lists.
func documentedNames(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../docs/COUNTERS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := map[string][]string{}
	scenario := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "## `"); ok {
			scenario = strings.TrimSuffix(name, "`")
			doc[scenario] = nil
			continue
		}
		m := docLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if scenario == "" {
			t.Fatalf("docs/COUNTERS.md lists %q before any scenario heading", m[1])
		}
		kind := m[2]
		if kind == "" {
			kind = "counter"
		}
		doc[scenario] = append(doc[scenario], kind+" "+m[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return doc
}

// emittedNames is every "kind name" in one scenario's stats.
func emittedNames(st flow.Stats) []string {
	var names []string
	for _, c := range st.Counters {
		names = append(names, "counter "+c.Name)
	}
	names = append(names, "total "+st.Ledger.Total.Name)
	for _, p := range st.Ledger.Parts {
		names = append(names, "part "+p.Name)
	}
	if d := st.Ledger.Duplicates; d != nil {
		names = append(names, "apart "+d.Name)
	}
	return names
}

// Walkthrough checks are predicates over counter and ledger names, so the
// names each scenario sends are exactly those docs/COUNTERS.md lists, all
// there from the first frame (a lab that has not run yet), each once and in
// the scheme, a per-node one named after a node of the diagram.
func TestCounterNamesAreTheDocumentedOnes(t *testing.T) {
	doc := documentedNames(t)
	l := mustOpenLab(t)
	for _, s := range l.scenarios {
		listed, ok := doc[s.Name()]
		if !ok {
			t.Errorf("docs/COUNTERS.md has no section for %s", s.Name())
			continue
		}
		delete(doc, s.Name())
		emitted := emittedNames(s.Stats())
		nodes := map[string]bool{}
		for _, n := range s.View().Nodes {
			nodes[n.ID] = true
		}
		for i, kn := range emitted {
			kind, name, _ := strings.Cut(kn, " ")
			if !counterScheme.MatchString(name) {
				t.Errorf("%s: %s %q breaks the naming scheme", s.Name(), kind, name)
			}
			if node, _, perNode := strings.Cut(name, "."); perNode && !nodes[node] {
				t.Errorf("%s: %s %q is per node, but %q is no node of the diagram", s.Name(), kind, name, node)
			}
			if slices.Contains(emitted[:i], kn) {
				t.Errorf("%s: %s %q sent twice", s.Name(), kind, name)
			}
			if !slices.Contains(listed, kn) {
				t.Errorf("%s sends %s %q, which docs/COUNTERS.md does not list", s.Name(), kind, name)
			}
		}
		for _, kn := range listed {
			if !slices.Contains(emitted, kn) {
				kind, name, _ := strings.Cut(kn, " ")
				t.Errorf("docs/COUNTERS.md lists %s %q for %s, which it does not send", kind, name, s.Name())
			}
		}
	}
	for name := range doc {
		t.Errorf("docs/COUNTERS.md has a section for %q, which is no scenario", name)
	}
}
