package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowlab/flow"
)

// factDoc is docs/FACTS.md: per scenario, per node id (or id pattern such
// as `p<n>`), the facts it sends and their types.
type factDoc map[string]map[string]map[string]string

var (
	factNode = regexp.MustCompile("^### `([^`]+)`")
	factLine = regexp.MustCompile("^- `([^`]+)` \\((int|number|bool|text|numbers)\\) — ")
)

func readFactDoc(t *testing.T) factDoc {
	t.Helper()
	f, err := os.Open("../docs/FACTS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := factDoc{}
	scenario, node := "", ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "## `"); ok {
			scenario, node = strings.TrimSuffix(name, "`"), ""
			doc[scenario] = map[string]map[string]string{}
			continue
		}
		if m := factNode.FindStringSubmatch(line); m != nil {
			if scenario == "" {
				t.Fatalf("docs/FACTS.md:%d: node %q before any scenario", n, m[1])
			}
			node = m[1]
			doc[scenario][node] = map[string]string{}
			continue
		}
		if m := factLine.FindStringSubmatch(line); m != nil {
			if node == "" {
				t.Fatalf("docs/FACTS.md:%d: fact %q before any node", n, m[1])
			}
			if !counterScheme.MatchString(m[1]) || strings.Contains(m[1], ".") {
				t.Errorf("docs/FACTS.md:%d: fact %q breaks the naming scheme", n, m[1])
			}
			doc[scenario][node][m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return doc
}

// listed finds the facts docs/FACTS.md lists for node: by its id, or by a
// pattern whose `<n>` stands for a number.
func (d factDoc) listed(scenario, node string) (map[string]string, bool) {
	if f, ok := d[scenario][node]; ok {
		return f, true
	}
	for pat, f := range d[scenario] {
		if prefix, ok := strings.CutSuffix(pat, "<n>"); ok {
			if rest, ok := strings.CutPrefix(node, prefix); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
				return f, true
			}
		}
	}
	return nil, false
}

// typeOf names a decoded JSON value's type as docs/FACTS.md does.
func typeOf(v any) string {
	switch v := v.(type) {
	case float64:
		if v == float64(int64(v)) {
			return "int"
		}
		return "number"
	case bool:
		return "bool"
	case string:
		return "text"
	case []any:
		for _, e := range v {
			if typeOf(e) != "int" {
				return "list of " + typeOf(e)
			}
		}
		return "numbers"
	}
	return fmt.Sprintf("%T", v)
}

type factsMsg struct {
	Type  string `json:"type"`
	Stats *struct {
		Nodes map[string]struct {
			State string `json:"state"`
			Facts []struct {
				Name  string `json:"name"`
				Value any    `json:"value"`
				Badge string `json:"badge"`
			} `json:"facts"`
		} `json:"nodes"`
	} `json:"stats"`
}

// Walkthrough checks are predicates over node facts, so every node of every
// scenario sends exactly the facts docs/FACTS.md lists for it, each once and
// of its listed type, in every frame and whatever its mode: the test reads
// each scenario's frames at its defaults and under each of its presets.
func TestNodeFactsAreTheDocumentedOnes(t *testing.T) {
	doc := readFactDoc(t)
	s := MustStart(t)
	for _, scenario := range []string{"request-response", "event-driven", "work-queue", "async-messaging", "compare"} {
		if _, ok := doc[scenario]; !ok {
			t.Errorf("docs/FACTS.md has no section for %s", scenario)
			continue
		}
		t.Run(scenario, func(t *testing.T) {
			conn, snap := s.wsAs(t, s.base+"/"+scenario, nil)
			for id := range doc[scenario] {
				if !strings.HasSuffix(id, "<n>") && !slices.ContainsFunc(snap.View.Nodes, func(n flow.Node) bool { return n.ID == id }) {
					t.Errorf("docs/FACTS.md lists node %q, which %s's diagram does not have", id, scenario)
				}
			}
			seen := map[string]bool{}
			check := func(when string, m factsMsg) {
				if m.Stats == nil {
					return
				}
				for id, ns := range m.Stats.Nodes {
					want, ok := doc.listed(scenario, id)
					if !ok {
						if !seen["node "+id] {
							t.Errorf("%s sends node %q, which docs/FACTS.md does not list", scenario, id)
						}
						seen["node "+id] = true
						continue
					}
					got := map[string]bool{}
					for _, f := range ns.Facts {
						key := id + " " + f.Name
						switch typ, listed := want[f.Name]; {
						case got[f.Name]:
							t.Errorf("%s %s: node %s sends fact %q twice", scenario, when, id, f.Name)
						case !listed && !seen[key]:
							t.Errorf("%s %s: node %s sends fact %q, which docs/FACTS.md does not list", scenario, when, id, f.Name)
						case listed && !typeMatches(typ, f.Value) && !seen[key+" type"]:
							seen[key+" type"] = true
							t.Errorf("%s %s: node %s fact %q is %v (%s), listed as %s", scenario, when, id, f.Name, f.Value, typeOf(f.Value), typ)
						}
						seen[key] = true
						got[f.Name] = true
					}
					for name := range want {
						if !got[name] && !seen[id+" missing "+name] {
							seen[id+" missing "+name] = true
							t.Errorf("%s %s: node %s (state %q) does not send fact %q, which docs/FACTS.md lists", scenario, when, id, ns.State, name)
						}
					}
				}
			}
			read := func(when string, d time.Duration) {
				end := time.Now().Add(d)
				for time.Now().Before(end) {
					conn.SetReadDeadline(end)
					_, b, err := conn.ReadMessage()
					if err != nil {
						if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
							return
						}
						t.Fatalf("%s: %v", when, err)
					}
					var m factsMsg
					if err := json.Unmarshal(b, &m); err != nil {
						t.Fatalf("%s: %v", when, err)
					}
					check(when, m)
				}
			}
			var first factsMsg
			raw, _ := json.Marshal(snap)
			json.Unmarshal(raw, &first)
			check("first snapshot", first)
			read("at its defaults", 2*time.Second)
			for i, p := range snap.Presets {
				cmd := fmt.Sprintf(`{"id":%d,"op":"preset","preset":%q}`, i+1, p.Name)
				if err := conn.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
					t.Fatal(err)
				}
				read("with preset "+p.Name, time.Second)
			}
		})
	}
}

func typeMatches(listed string, v any) bool {
	got := typeOf(v)
	return got == listed || (listed == "number" && got == "int")
}
