package web_test

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"flowlab/web"
)

// jargon is every term issue 10 names, each with a text in which a page shows
// it, and the glossary entry that must define it there.
var jargon = []struct{ shown, term string }{
	{"prefetch 5", "prefetch"},
	{"unacked 3", "unacked"},
	{"in memory 12", "in memory"},
	{"Mandatory", "mandatory"},
	{"returned: 312 NO_ROUTE", "312 NO_ROUTE"},
	{"dead letters via t1.ecommerce.dlx", "DLX"},
	{"exclusive temporary", "exclusive"},
	{"amq.gen-JzTY20BRgKO-HjmUJj0wLg (exclusive, server-named)", "server-named"},
	{"amq.gen-JzTY20BRgKO-HjmUJj0wLg", "amq.gen-…"},
	{"commit 37", "commit"},
	{"uncommitted 4", "uncommitted"},
	{"lag 103", "lag"},
	{"ORPHANED", "ORPHANED"},
	{"Session timeout", "session timeout"},
	{"rebalances 2", "rebalance"},
	{"REBALANCING", "rebalance"},
	{"acks all", "acks all"},
	{"linger 5 ms", "linger"},
	{"Batch linger", "linger"},
	{"OPEN", "breaker OPEN"},
	{"circuit breaker open", "breaker OPEN"},
	{"HALF-OPEN", "breaker HALF-OPEN"},
	{"ABSENT", "ABSENT"},
	{"auto-commit every 5 s", "auto-commit"},
}

// lookup finds the glossary's terms in a text as static/glossary.js does: at
// each place the longest match wins, and matches do not overlap.
func lookup(t *testing.T, text string) []string {
	t.Helper()
	type hit struct {
		start, end int
		term       string
	}
	var hits []hit
	for _, g := range web.Glossary {
		var res []*regexp.Regexp
		for _, m := range g.Match {
			res = append(res, regexp.MustCompile(`(?i)`+m))
		}
		for _, m := range g.Exact {
			res = append(res, regexp.MustCompile(m))
		}
		for _, re := range res {
			for _, loc := range re.FindAllStringIndex(text, -1) {
				hits = append(hits, hit{loc[0], loc[1], g.Term})
			}
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].start != hits[j].start {
			return hits[i].start < hits[j].start
		}
		return hits[i].end > hits[j].end
	})
	var out []string
	end := 0
	for _, h := range hits {
		if h.start >= end {
			out = append(out, h.term)
			end = h.end
		}
	}
	return out
}

func TestGlossaryDefinesEveryTermWherePagesShowIt(t *testing.T) {
	for _, j := range jargon {
		found := lookup(t, j.shown)
		if len(found) == 0 || !slices.Contains(found, j.term) {
			t.Errorf("%q on a page finds %v, want the definition of %q", j.shown, found, j.term)
		}
	}
}

func TestGlossaryDefinitionsAreOneShortLine(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range web.Glossary {
		if seen[g.Term] {
			t.Errorf("%q is defined twice", g.Term)
		}
		seen[g.Term] = true
		words := len(strings.Fields(g.Def))
		if words == 0 || words > 22 || strings.Contains(g.Def, "\n") {
			t.Errorf("%q: definition of %d words %q, want one line of at most 22", g.Term, words, g.Def)
		}
		if len(g.Match)+len(g.Exact) == 0 {
			t.Errorf("%q has nothing to find it by", g.Term)
		}
	}
}

// A breaker's OPEN must read as calls blocked, not as a way open to traffic.
func TestGlossarySaysAnOpenBreakerBlocksCalls(t *testing.T) {
	for _, g := range web.Glossary {
		if g.Term == "breaker OPEN" && !strings.Contains(g.Def, "blocking calls") {
			t.Errorf("breaker OPEN is defined as %q: it must say that calls are blocked", g.Def)
		}
	}
}
