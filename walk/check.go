package walk

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"flowlab/flow"
)

// env is what a check, an outcome or a placeholder reads: the lab now, and
// how far it moved since the baseline (docs/WALKTHROUGHS.md has the table).
type env struct {
	Counters map[string]int            `expr:"counters"`
	Delta    map[string]int            `expr:"delta"`
	Facts    map[string]map[string]any `expr:"facts"`
	State    map[string]string         `expr:"state"`
	Knobs    map[string]any            `expr:"knobs"`
	Events   map[string]int            `expr:"events"`
	Seconds  float64                   `expr:"seconds"`
}

// program is one compiled expression.
type program struct {
	src string
	vm  *vm.Program
}

func (p *program) run(e *env) (any, error) {
	if p == nil || p.vm == nil {
		return nil, fmt.Errorf("not compiled")
	}
	return expr.Run(p.vm, e)
}

// result is the type an expression must have.
type result int

const (
	anyResult result = iota
	boolResult
	stringResult
)

// compiler compiles the expressions of one file against its catalog.
type compiler struct {
	file string
	cat  *Catalog
}

func (c *compiler) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", c.file, line, fmt.Sprintf(format, args...))
}

// factFuncs read a fact as the type FACTS.md gives it, so that comparing a
// bool fact with a number is refused at load rather than failing at a
// learner's check. A fact a node does not send now reads as its zero value.
var factFuncs = map[string]struct {
	name string
	typ  any
	conv func(any) any
}{
	"int":     {"fact_int", new(func(map[string]map[string]any, string, string) int), toInt},
	"number":  {"fact_number", new(func(map[string]map[string]any, string, string) float64), toFloat},
	"bool":    {"fact_bool", new(func(map[string]map[string]any, string, string) bool), toBool},
	"text":    {"fact_text", new(func(map[string]map[string]any, string, string) string), toText},
	"numbers": {"fact_numbers", new(func(map[string]map[string]any, string, string) []int), toInts},
}

var factOptions = func() []expr.Option {
	var opts []expr.Option
	for _, f := range factFuncs {
		conv := f.conv
		opts = append(opts, expr.Function(f.name, func(p ...any) (any, error) {
			facts, _ := p[0].(map[string]map[string]any)
			return conv(facts[p[1].(string)][p[2].(string)]), nil
		}, f.typ))
	}
	return opts
}()

// compile checks src, written at line of the file, for names the catalog
// does not have, then compiles it against env with the result type want.
func (c *compiler) compile(src string, line int, want result) (*program, []error) {
	lineOf := func(offset int) int {
		if offset < 0 || offset > len(src) {
			return line
		}
		return line + strings.Count(src[:offset], "\n")
	}
	if strings.TrimSpace(src) == "" {
		return nil, []error{c.errorf(line, "the expression is empty")}
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, []error{c.exprError(src, line, err)}
	}
	v := &nameCheck{cat: c.cat}
	ast.Walk(&tree.Node, v)
	if errs := v.errors(c, lineOf); len(errs) > 0 {
		return nil, errs
	}
	opts := append([]expr.Option{expr.Env(env{}), expr.Patch(factTyper{c.cat})}, factOptions...)
	switch want {
	case boolResult:
		opts = append(opts, expr.AsBool())
	case stringResult:
		opts = append(opts, expr.AsKind(reflect.String))
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, []error{c.exprError(src, line, err)}
	}
	return &program{src: src, vm: p}, nil
}

// exprError names the line of the file an expression error is on.
func (c *compiler) exprError(src string, line int, err error) error {
	if fe, ok := err.(*file.Error); ok {
		msg := fe.Message
		for _, name := range []string{"fact_int", "fact_number", "fact_bool", "fact_text", "fact_numbers"} {
			msg = strings.ReplaceAll(msg, name, "facts")
		}
		return c.errorf(line+max(fe.Line, 1)-1, "%s, in %q", msg, strings.TrimSpace(src))
	}
	return c.errorf(line, "%v, in %q", err, strings.TrimSpace(src))
}

// nameCheck walks an expression and notes every use of the lab's maps: each
// must be indexed by a name in quotes the catalog has.
type nameCheck struct {
	cat     *Catalog
	indexed map[*ast.IdentifierNode]bool // directly indexed
	inner   map[*ast.MemberNode]bool     // facts["node"] with a fact after it
	idents  []*ast.IdentifierNode
	members []*ast.MemberNode // facts["node"]
	bad     []nameError
}

type nameError struct {
	at  int // offset in the expression
	msg string
}

var labMaps = map[string]bool{"counters": true, "delta": true, "facts": true, "state": true, "knobs": true, "events": true}

func (v *nameCheck) Visit(n *ast.Node) {
	if v.indexed == nil {
		v.indexed, v.inner = map[*ast.IdentifierNode]bool{}, map[*ast.MemberNode]bool{}
	}
	switch n := (*n).(type) {
	case *ast.IdentifierNode:
		if labMaps[n.Value] {
			v.idents = append(v.idents, n)
		}
	case *ast.MemberNode:
		if in, ok := n.Node.(*ast.MemberNode); ok {
			if id, ok := in.Node.(*ast.IdentifierNode); ok && id.Value == "facts" {
				v.inner[in] = true
				v.fact(in, n)
			}
			return
		}
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok || !labMaps[id.Value] {
			return
		}
		v.indexed[id] = true
		key, ok := n.Property.(*ast.StringNode)
		if !ok {
			v.bad = append(v.bad, nameError{n.Property.Location().From,
				fmt.Sprintf("%s must be indexed by a name in quotes, such as %s[\"…\"], so the name can be checked", id.Value, id.Value)})
			return
		}
		if id.Value == "facts" {
			v.members = append(v.members, n)
			if _, ok := v.cat.node(key.Value); !ok {
				v.bad = append(v.bad, nameError{key.Location().From,
					fmt.Sprintf("unknown node %q: %s has %s (docs/FACTS.md)", key.Value, v.cat.pattern, v.cat.nodeNames())})
			}
			return
		}
		if msg := v.cat.unknown(id.Value, key.Value); msg != "" {
			v.bad = append(v.bad, nameError{key.Location().From, msg})
		}
	}
}

// fact checks facts["node"]["fact"].
func (v *nameCheck) fact(in, n *ast.MemberNode) {
	node, ok1 := in.Property.(*ast.StringNode)
	fact, ok2 := n.Property.(*ast.StringNode)
	if !ok2 {
		v.bad = append(v.bad, nameError{n.Property.Location().From, `facts must be indexed by names in quotes, such as facts["node"]["fact"], so the names can be checked`})
	}
	if !ok1 || !ok2 {
		return // a node not in quotes was reported by the visit of in
	}
	d, ok := v.cat.node(node.Value)
	if !ok {
		return
	}
	if _, ok := d.facts[fact.Value]; !ok {
		var fs []string
		for f := range d.facts {
			fs = append(fs, f)
		}
		v.bad = append(v.bad, nameError{fact.Location().From,
			fmt.Sprintf("node %s has no fact %q: it has %s (docs/FACTS.md)", node.Value, fact.Value, strings.Join(slices.Sorted(slices.Values(fs)), ", "))})
	}
}

func (v *nameCheck) errors(c *compiler, lineOf func(int) int) []error {
	bad := v.bad
	for _, id := range v.idents {
		if !v.indexed[id] {
			bad = append(bad, nameError{id.Location().From,
				fmt.Sprintf("%s must be indexed by a name in quotes, such as %s[\"…\"], so the name can be checked", id.Value, id.Value)})
		}
	}
	for _, m := range v.members {
		if !v.inner[m] {
			bad = append(bad, nameError{m.Location().From, `facts["node"] needs a fact after it: facts["node"]["fact"]`})
		}
	}
	var errs []error
	for _, b := range bad {
		errs = append(errs, c.errorf(lineOf(b.at), "%s", b.msg))
	}
	return errs
}

// unknown says what is wrong with name as a key of the map called what, or
// "" when the catalog has it.
func (c *Catalog) unknown(what, name string) string {
	switch what {
	case "counters", "delta":
		for _, n := range c.counters {
			if n == name {
				return ""
			}
		}
		return fmt.Sprintf("unknown counter %q: %s has %s (docs/COUNTERS.md)", name, c.pattern, strings.Join(c.counters, ", "))
	case "state":
		if _, ok := c.node(name); !ok {
			return fmt.Sprintf("unknown node %q: %s has %s (docs/FACTS.md)", name, c.pattern, c.nodeNames())
		}
	case "knobs":
		k, ok := c.knobs[name]
		if !ok {
			return fmt.Sprintf("unknown knob %q: %s has %s", name, c.pattern, c.knobNames())
		}
		if k.Type == flow.ActionKnob {
			return fmt.Sprintf("knob %s is a button: it has no value to read", name)
		}
	case "events":
		for _, k := range eventKinds {
			if string(k) == name {
				return ""
			}
		}
		return fmt.Sprintf("unknown event kind %q: the kinds are %s", name, kindNames())
	}
	return ""
}

// factTyper turns facts["node"]["fact"] into a call that reads the fact as
// its type. The names were checked before.
type factTyper struct{ cat *Catalog }

func (f factTyper) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok {
		return
	}
	in, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := in.Node.(*ast.IdentifierNode)
	node, ok1 := in.Property.(*ast.StringNode)
	fact, ok2 := m.Property.(*ast.StringNode)
	if !ok || id.Value != "facts" || !ok1 || !ok2 {
		return
	}
	d, _ := f.cat.node(node.Value)
	call := &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: factFuncs[d.facts[fact.Value]].name},
		Arguments: []ast.Node{id, node, fact},
	}
	ast.Patch(n, call)
}

func toInt(v any) any {
	switch v := v.(type) {
	case int64:
		return int(v)
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

func toFloat(v any) any {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case float64:
		return v
	}
	return 0.0
}

func toBool(v any) any { b, _ := v.(bool); return b }

func toText(v any) any { s, _ := v.(string); return s }

func toInts(v any) any {
	switch v := v.(type) {
	case []int:
		return v
	case []any: // as JSON gives it back
		out := make([]int, 0, len(v))
		for _, x := range v {
			out = append(out, toInt(x).(int))
		}
		return out
	}
	return []int{}
}
