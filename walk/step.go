package walk

import (
	"slices"
	"strings"
	"time"

	exprast "github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/goccy/go-yaml"
)

// stepFile is a ```step block.
type stepFile struct {
	Nodes    at[[]string]   `yaml:"nodes"`
	Choices  at[yamlNode]   `yaml:"choices"`
	Outcome  at[string]     `yaml:"outcome"`
	Measured at[string]     `yaml:"measured"`
	Do       at[[]yamlNode] `yaml:"do"`
	Check    at[string]     `yaml:"check"`
	Within   at[string]     `yaml:"within"`
	Hint     at[string]     `yaml:"hint"`
	Show     at[[]yamlNode] `yaml:"show"`
}

// stepBlock reads the ```step block that may start at index i (after blank
// lines) and returns the index of the first line after it.
func (p *fileParser) stepBlock(s *Step, lines []string, i int) int {
	j := i
	for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
		j++
	}
	if j >= len(lines) || strings.TrimSpace(lines[j]) != "```step" {
		p.stepFields(s, stepFile{})
		return i
	}
	end := j + 1
	for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
		end++
	}
	if end >= len(lines) {
		p.fail(j+1, "the ```step block has no closing ```")
		return len(lines)
	}
	var f stepFile
	if p.decode(strings.Join(lines[j+1:end], "\n"), j+2, &f) {
		p.stepFields(s, f)
	}
	return end + 1
}

// stepFields checks the fields of a step block against its kind.
func (p *fileParser) stepFields(s *Step, f stepFile) {
	present := map[string]int{
		"nodes": f.Nodes.Line, "choices": f.Choices.Line, "outcome": f.Outcome.Line, "measured": f.Measured.Line,
		"do": f.Do.Line, "check": f.Check.Line, "within": f.Within.Line, "hint": f.Hint.Line, "show": f.Show.Line,
	}
	for _, field := range []string{"nodes", "choices", "outcome", "measured", "do", "check", "within", "hint", "show"} {
		if line := present[field]; line > 0 && !slices.Contains(stepFields[s.Kind], field) {
			p.fail(line, "a %s step takes no %s: it takes %s", s.Kind, field, strings.Join(stepFields[s.Kind], ", "))
		}
	}
	for _, n := range f.Nodes.V {
		if _, ok := p.cat.node(n); !ok {
			p.fail(f.Nodes.Line, "unknown node %q: %s has %s (docs/FACTS.md)", n, p.cat.pattern, p.cat.nodeNames())
		}
	}
	s.Nodes = f.Nodes.V
	switch s.Kind {
	case KindPredict:
		p.predict(s, f)
	case KindAct:
		s.do = p.commands(f.Do.V)
		if f.Do.Line > 0 && len(f.Do.V) == 0 {
			p.fail(f.Do.Line, "do: lists no commands")
		}
		if f.Do.Line > 0 && f.Show.Line > 0 {
			p.fail(f.Show.Line, "an act with do: takes no show: its button already does it")
		}
		s.show = p.commands(f.Show.V)
	case KindCheck:
		p.check(s, f)
	}
}

func (p *fileParser) predict(s *Step, f stepFile) {
	line := max(f.Choices.Line, s.Line)
	if kvs, ok := entries(f.Choices.V.node); ok {
		for _, kv := range kvs {
			id := keyOf(kv)
			var text string
			if err := yaml.NodeToValue(kv.Value, &text); err != nil || strings.TrimSpace(text) == "" {
				p.fail(lineOf(kv.Key), "choice %q needs a text", id)
				continue
			}
			s.choices = append(s.choices, choice{ID: id, Text: text})
		}
	} else if f.Choices.Line > 0 {
		p.fail(line, "choices: is a map of choice id to the text shown, such as lost: Some orders are lost")
	}
	if len(s.choices) < 2 {
		p.fail(line, "a predict step needs choices: at least 2, as id: text")
	}
	if f.Outcome.Line == 0 {
		p.fail(s.Line, "a predict step needs outcome: an expression giving the choice id that happened")
		return
	}
	s.outcome = p.expr(f.Outcome, stringResult)
	if s.outcome != nil {
		for _, lit := range outcomes(s.outcome) {
			if !slices.ContainsFunc(s.choices, func(c choice) bool { return c.ID == lit }) {
				p.fail(f.Outcome.Line, "outcome can give %q, which is no choice id of this step", lit)
			}
		}
	}
	if f.Measured.Line > 0 {
		t, errs := parseText(&p.compiler, f.Measured.V, f.Measured.Line, false)
		p.errs = append(p.errs, errs...)
		s.measured = t
	}
}

func (p *fileParser) check(s *Step, f stepFile) {
	if f.Check.Line == 0 {
		p.fail(s.Line, "a check step needs check: an expression that is true once the learner has done it")
	} else {
		s.check = p.expr(f.Check, boolResult)
	}
	if f.Within.Line == 0 {
		p.fail(s.Line, "a check step needs within: how long the learner has, such as 30s")
	} else if d, err := time.ParseDuration(f.Within.V); err != nil || d <= 0 || d > 10*time.Minute {
		p.fail(f.Within.Line, "within: %q is no duration above 0 and up to 10m, such as 30s", f.Within.V)
	} else {
		s.within = d
	}
	if strings.TrimSpace(f.Hint.V) == "" {
		p.fail(max(f.Hint.Line, s.Line), "a check step needs hint: what to look at when it has not passed in time")
	}
	s.hint = strings.TrimSpace(f.Hint.V)
	s.show = p.commands(f.Show.V)
}

// expr compiles the expression of a field.
func (p *fileParser) expr(f at[string], want result) *program {
	prog, errs := p.compile(f.V, f.Line, want)
	p.errs = append(p.errs, errs...)
	return prog
}

// body renders the Markdown of a step, which starts at line start.
func (p *fileParser) body(s *Step, body []string, start int) {
	t, errs := parseText(&p.compiler, strings.Join(body, "\n"), start, true)
	p.errs = append(p.errs, errs...)
	s.body = t
}

// crossChecks are the rules between steps: a prediction is judged by the
// next check, so one must follow it.
func (p *fileParser) crossChecks(w *Walk) {
	for i, s := range w.Steps {
		if s.Kind != KindPredict {
			continue
		}
		if !slices.ContainsFunc(w.Steps[i+1:], func(t *Step) bool { return t.Kind == KindCheck }) {
			p.fail(s.Line, "no check follows this predict step: its outcome is judged when the next check passes")
		}
	}
}

// outcomes are the choice ids an outcome expression can give, where they
// are written as literals: "lost", or c ? "lost" : "kept".
func outcomes(p *program) []string {
	tree, err := exprparser.Parse(p.src)
	if err != nil {
		return nil
	}
	var lits []string
	var leaf func(n exprast.Node)
	leaf = func(n exprast.Node) {
		switch n := n.(type) {
		case *exprast.StringNode:
			lits = append(lits, n.Value)
		case *exprast.ConditionalNode:
			leaf(n.Exp1)
			leaf(n.Exp2)
		case *exprast.BinaryNode:
			if n.Operator == "??" {
				leaf(n.Left)
				leaf(n.Right)
			}
		}
	}
	leaf(tree.Node)
	return lits
}
