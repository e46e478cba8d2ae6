package walk

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"flowlab/docs"
	"flowlab/flow"
)

// Catalog is every name a walk of one pattern may use: counters and ledger
// names (docs/COUNTERS.md), nodes and the type of each of their facts
// (docs/FACTS.md), event kinds, and its scenario's knobs and presets.
type Catalog struct {
	pattern  string
	counters []string
	nodes    []docNode
	knobs    map[string]flow.Knob
	presets  map[string]bool
}

// docNode is a node as FACTS.md lists it; a name such as p<n> stands for
// p0, p1, ….
type docNode struct {
	name  string
	match *regexp.Regexp
	facts map[string]string // fact → type: int, number, bool, text or numbers
}

// eventKinds are the kinds of flow events a check may count.
var eventKinds = []flow.Kind{
	flow.KindPublish, flow.KindRoute, flow.KindDeliver, flow.KindAck, flow.KindNack,
	flow.KindRequeue, flow.KindDeadLetter, flow.KindDrop, flow.KindReturn, flow.KindRequest,
	flow.KindResponse, flow.KindTimeout, flow.KindError, flow.KindReject, flow.KindRetry,
	flow.KindResult, flow.KindCommit, flow.KindRebalance, flow.KindState,
}

// NewCatalog returns the catalog of pattern, with its names from the
// embedded docs and the knobs and presets its scenario declares.
func NewCatalog(pattern string, knobs []flow.Knob, presets []flow.Preset) (*Catalog, error) {
	d, err := docNames()
	if err != nil {
		return nil, err
	}
	counters, ok := d.counters[pattern]
	if !ok {
		return nil, flow.Errorf(flow.NotFound, "docs/COUNTERS.md has no pattern %q", pattern)
	}
	nodes, ok := d.nodes[pattern]
	if !ok {
		return nil, flow.Errorf(flow.NotFound, "docs/FACTS.md has no pattern %q", pattern)
	}
	c := &Catalog{pattern: pattern, counters: counters, nodes: nodes,
		knobs: map[string]flow.Knob{}, presets: map[string]bool{}}
	for _, k := range knobs {
		c.knobs[k.Name] = k
	}
	for _, p := range presets {
		c.presets[p.Name] = true
	}
	return c, nil
}

// node returns the node called name.
func (c *Catalog) node(name string) (docNode, bool) {
	i := slices.IndexFunc(c.nodes, func(n docNode) bool { return n.match.MatchString(name) })
	if i < 0 {
		return docNode{}, false
	}
	return c.nodes[i], true
}

func (c *Catalog) nodeNames() string {
	var s []string
	for _, n := range c.nodes {
		s = append(s, n.name)
	}
	return strings.Join(s, ", ")
}

func (c *Catalog) knobNames() string {
	var s []string
	for name := range c.knobs {
		s = append(s, name)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func (c *Catalog) presetNames() string {
	var s []string
	for name := range c.presets {
		s = append(s, name)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func kindNames() string {
	var s []string
	for _, k := range eventKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// names are the names the docs list, per pattern.
type names struct {
	counters map[string][]string
	nodes    map[string][]docNode
}

var (
	patternLine = regexp.MustCompile("^## `([a-z-]+)`")
	nodeLine    = regexp.MustCompile("^### `([^`]+)`")
	factLine    = regexp.MustCompile("^- `([^`]+)` \\((int|number|bool|text|numbers)\\)")
	counterLine = regexp.MustCompile("^- `([^`]+)`")
)

// docNames reads the names once from the embedded docs.
var docNames = sync.OnceValues(func() (names, error) {
	d := names{counters: map[string][]string{}, nodes: map[string][]docNode{}}
	var pattern string
	for _, line := range strings.Split(docs.Counters, "\n") {
		if m := patternLine.FindStringSubmatch(line); m != nil {
			pattern = m[1]
			d.counters[pattern] = []string{}
		} else if m := counterLine.FindStringSubmatch(line); m != nil && pattern != "" {
			if !slices.Contains(d.counters[pattern], m[1]) {
				d.counters[pattern] = append(d.counters[pattern], m[1])
			}
		}
	}
	pattern = ""
	for _, line := range strings.Split(docs.Facts, "\n") {
		if m := patternLine.FindStringSubmatch(line); m != nil {
			pattern = m[1]
			d.nodes[pattern] = nil
		} else if m := nodeLine.FindStringSubmatch(line); m != nil && pattern != "" {
			re := "^" + strings.ReplaceAll(regexp.QuoteMeta(m[1]), "<n>", "(0|[1-9][0-9]*)") + "$"
			d.nodes[pattern] = append(d.nodes[pattern], docNode{name: m[1], match: regexp.MustCompile(re), facts: map[string]string{}})
		} else if m := factLine.FindStringSubmatch(line); m != nil && len(d.nodes[pattern]) > 0 {
			d.nodes[pattern][len(d.nodes[pattern])-1].facts[m[1]] = m[2]
		}
	}
	if len(d.counters) == 0 || len(d.nodes) == 0 {
		return d, fmt.Errorf("walk: no names found in docs/COUNTERS.md or docs/FACTS.md")
	}
	return d, nil
})
