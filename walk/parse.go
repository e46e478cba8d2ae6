package walk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	exprast "github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/goccy/go-yaml"
	yamlast "github.com/goccy/go-yaml/ast"

	"flowlab/flow"
)

// maxWait is the longest pause a command list may hold.
const maxWait = 60 * time.Second

var (
	idName      = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	stepHeading = regexp.MustCompile(`^##\s+(\S+?):\s*(.*?)\s*$`)
	stepKinds   = map[string]string{"Read": KindRead, "Predict": KindPredict, "Act": KindAct, "Check": KindCheck, "Explain": KindExplain}
	// stepFields are the fields of a ```step block each kind takes.
	stepFields = map[string][]string{
		KindRead:    {"nodes"},
		KindExplain: {"nodes"},
		KindPredict: {"nodes", "choices", "outcome", "measured"},
		KindAct:     {"nodes", "do", "show"},
		KindCheck:   {"nodes", "check", "within", "hint", "show"},
	}
)

// Load reads every *.md file at the top of fsys as a walk, checked against
// the catalog of its pattern. The error joins every problem found, each as
// walks/<file>.md:<line>: <what is wrong>, so one run lists them all.
func Load(fsys fs.FS, cats map[string]*Catalog) ([]*Walk, error) {
	names, err := fs.Glob(fsys, "*.md")
	if err != nil {
		return nil, err
	}
	var (
		walks []*Walk
		errs  []error
	)
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("walks/%s: %w", name, err))
			continue
		}
		w, ferrs := parseFile(name, string(src), cats)
		errs = append(errs, ferrs...)
		if len(ferrs) == 0 {
			walks = append(walks, w)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return walks, nil
}

// parser reads one file.
type fileParser struct {
	compiler
	errs []error
}

func (p *fileParser) fail(line int, format string, args ...any) {
	p.errs = append(p.errs, p.errorf(line, format, args...))
}

// parseFile reads the walk in src, the file called name.
func parseFile(name, src string, cats map[string]*Catalog) (*Walk, []error) {
	p := &fileParser{compiler: compiler{file: "walks/" + name}}
	id := strings.TrimSuffix(path.Base(name), ".md")
	if !idName.MatchString(id) {
		p.fail(1, "the file name must be lower-case words joined by -, then .md")
	}
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "---" {
		p.fail(1, "a walk starts with a YAML header between --- lines")
		return nil, p.errs
	}
	end := slices.IndexFunc(lines[1:], func(l string) bool { return strings.TrimSpace(l) == "---" })
	if end < 0 {
		p.fail(1, "the YAML header has no closing ---")
		return nil, p.errs
	}
	end++ // index of the closing line
	w := &Walk{ID: id, file: p.file}
	if !p.header(w, strings.Join(lines[1:end], "\n"), cats) {
		return nil, p.errs
	}
	p.sections(w, lines, end+1)
	p.crossChecks(w)
	return w, p.errs
}

// header is the YAML header.
type header struct {
	Title   at[string]     `yaml:"title"`
	Pattern at[string]     `yaml:"pattern"`
	Minutes at[int]        `yaml:"minutes"`
	Learn   at[[]string]   `yaml:"learn"`
	Setup   at[[]yamlNode] `yaml:"setup"`
}

// header reads the header, which starts on line 2, and finds the catalog;
// false when the rest cannot be checked.
func (p *fileParser) header(w *Walk, src string, cats map[string]*Catalog) bool {
	var h header
	if !p.decode(src, 2, &h) {
		return false
	}
	w.Title, w.Minutes, w.Learn = strings.TrimSpace(h.Title.V), h.Minutes.V, h.Learn.V
	if w.Title == "" {
		p.fail(max(h.Title.Line, 1), "the header needs a title")
	}
	if w.Minutes <= 0 {
		p.fail(max(h.Minutes.Line, 1), "the header needs minutes: a whole number above 0, how long the walk takes")
	}
	if len(w.Learn) == 0 {
		p.fail(max(h.Learn.Line, 1), "the header needs learn: a list of what the learner will learn")
	}
	w.Pattern = h.Pattern.V
	p.cat = cats[w.Pattern]
	if p.cat == nil {
		var known []string
		for name := range cats {
			known = append(known, name)
		}
		p.fail(max(h.Pattern.Line, 1), "unknown pattern %q: use one of %s", w.Pattern, strings.Join(slices.Sorted(slices.Values(known)), ", "))
		return false
	}
	w.setup = p.commands(h.Setup.V)
	return true
}

// sections reads the steps, from line index first on.
func (p *fileParser) sections(w *Walk, lines []string, first int) {
	var (
		step  *Step
		body  []string
		start int // line number of body[0]
		fence string
	)
	flush := func() {
		if step != nil {
			p.body(step, body, start)
			w.Steps = append(w.Steps, step)
		}
	}
	for i := first; i < len(lines); i++ {
		line, n := lines[i], i+1
		if fence == "" && strings.HasPrefix(line, "## ") {
			flush()
			step, body, start = p.heading(line, n), nil, n+1
			if step != nil && i+1 < len(lines) {
				i = p.stepBlock(step, lines, i+1) - 1
				start = i + 2
			}
			continue
		}
		if f := fenceOf(line); f != "" {
			switch {
			case fence == "" && strings.TrimSpace(line) == "```step":
				p.fail(n, "a ```step block must come right after its step's heading")
			case fence == "":
				fence = f
			case strings.HasPrefix(strings.TrimSpace(line), fence) && strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), fence[:1])) == "":
				fence = ""
			}
		}
		if step == nil {
			if strings.TrimSpace(line) != "" {
				p.fail(n, "text before the first step: each step starts with a heading \"## <Kind>: <title>\"")
				return
			}
			continue
		}
		body = append(body, line)
	}
	flush()
	if len(w.Steps) == 0 {
		p.fail(len(lines), "the walk has no steps: each starts with a heading \"## <Kind>: <title>\"")
	}
}

// fenceOf returns the fence a line opens or closes (``` or ~~~, maybe
// longer), or "".
func fenceOf(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, c := range []string{"`", "~"} {
		n := len(t) - len(strings.TrimLeft(t, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// heading reads "## <Kind>: <title>" on line n.
func (p *fileParser) heading(line string, n int) *Step {
	m := stepHeading.FindStringSubmatch(line)
	if m == nil {
		p.fail(n, "a step heading is \"## <Kind>: <title>\", with Kind one of Read, Predict, Act, Check, Explain")
		return nil
	}
	kind, ok := stepKinds[m[1]]
	if !ok {
		p.fail(n, "unknown step kind %q: use Read, Predict, Act, Check or Explain", m[1])
		return nil
	}
	if m[2] == "" {
		p.fail(n, "the step has no title after \"%s:\"", m[1])
	}
	return &Step{Kind: kind, Title: m[2], Line: n}
}

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
	if m, ok := f.Choices.V.node.(*yamlast.MappingNode); ok {
		for _, kv := range m.Values {
			var text string
			if err := yaml.NodeToValue(kv.Value, &text); err != nil || strings.TrimSpace(text) == "" {
				p.fail(kv.Key.GetToken().Position.Line, "choice %q needs a text", kv.Key.String())
				continue
			}
			if slices.ContainsFunc(s.choices, func(c choice) bool { return c.ID == kv.Key.String() }) {
				p.fail(kv.Key.GetToken().Position.Line, "duplicate choice %q", kv.Key.String())
				continue
			}
			s.choices = append(s.choices, choice{ID: kv.Key.String(), Text: text})
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

// commands reads a list of commands and checks each against the catalog.
func (p *fileParser) commands(nodes []yamlNode) []Command {
	var out []Command
	for _, n := range nodes {
		if c, ok := p.command(n); ok {
			out = append(out, c)
		}
	}
	return out
}

// command is one of {set, value}, {preset}, {wait}, {reset: true}.
func (p *fileParser) command(n yamlNode) (Command, bool) {
	const shapes = "a command is one of {set: <knob>, value: <v>}, {preset: <name>}, {wait: <duration>}, {reset: true}"
	m, ok := n.node.(*yamlast.MappingNode)
	if !ok {
		p.fail(n.line, "%s", shapes)
		return Command{}, false
	}
	fields := map[string]yamlast.Node{}
	for _, kv := range m.Values {
		k := kv.Key.String()
		if !slices.Contains([]string{"set", "value", "preset", "wait", "reset"}, k) {
			p.fail(kv.Key.GetToken().Position.Line, "unknown field %q: %s", k, shapes)
			return Command{}, false
		}
		if fields[k] != nil {
			p.fail(kv.Key.GetToken().Position.Line, "duplicate field %q", k)
			return Command{}, false
		}
		fields[k] = kv.Value
	}
	str := func(k string) string {
		var s string
		if fields[k] != nil && yaml.NodeToValue(fields[k], &s) != nil {
			p.fail(n.line, "%s: takes a name", k)
		}
		return s
	}
	var c Command
	switch {
	case len(fields) == 2 && fields["set"] != nil && fields["value"] != nil, len(fields) == 1 && fields["set"] != nil:
		c.Set = str("set")
		k, ok := p.cat.knobs[c.Set]
		if !ok {
			p.fail(n.line, "unknown knob %q: %s has %s", c.Set, p.cat.pattern, p.cat.knobNames())
			return c, false
		}
		if fields["value"] != nil {
			var v any
			if err := yaml.NodeToValue(fields["value"], &v); err != nil {
				p.fail(n.line, "value of %s: %v", c.Set, err)
				return c, false
			}
			raw, err := json.Marshal(v)
			if err != nil {
				p.fail(n.line, "value of %s: %v", c.Set, err)
				return c, false
			}
			c.Value = raw
		}
		if _, err := k.Parse(c.Value); err != nil {
			p.fail(n.line, "%s: %s", c.Set, flow.MessageOf(err))
			return c, false
		}
	case len(fields) == 1 && fields["preset"] != nil:
		c.Preset = str("preset")
		if !p.cat.presets[c.Preset] {
			p.fail(n.line, "unknown preset %q: %s has %s", c.Preset, p.cat.pattern, p.cat.presetNames())
			return c, false
		}
	case len(fields) == 1 && fields["wait"] != nil:
		d, err := time.ParseDuration(str("wait"))
		if err != nil || d <= 0 || d > maxWait {
			p.fail(n.line, "wait: takes a duration from 1ms to %s, such as 5s", maxWait)
			return c, false
		}
		c.Wait = d
	case len(fields) == 1 && fields["reset"] != nil:
		if err := yaml.NodeToValue(fields["reset"], &c.Reset); err != nil || !c.Reset {
			p.fail(n.line, "reset: takes true")
			return c, false
		}
	default:
		p.fail(n.line, "%s", shapes)
		return c, false
	}
	return c, true
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

// at is a YAML value with the line of the file it is on (0 when absent).
type at[T any] struct {
	V    T
	Line int
}

func (a *at[T]) UnmarshalYAML(n yamlast.Node) error {
	a.Line = valueLine(n)
	return yaml.NodeToValue(n, &a.V, yaml.Strict())
}

// yamlNode is a YAML value kept as parsed, read where its line matters.
type yamlNode struct {
	node yamlast.Node
	line int
}

func (y *yamlNode) UnmarshalYAML(n yamlast.Node) error {
	y.node, y.line = n, valueLine(n)
	return nil
}

// valueLine is the line a value starts on: a block scalar (| or >) starts
// on the line after its indicator.
func valueLine(n yamlast.Node) int {
	line := n.GetToken().Position.Line
	if _, ok := n.(*yamlast.LiteralNode); ok {
		line++
	}
	return line
}

// decode reads YAML that starts on line first of the file, refusing unknown
// fields and duplicate keys. The YAML is padded with blank lines so the
// lines the parser reports are the file's own.
func (p *fileParser) decode(src string, first int, v any) bool {
	padded := strings.Repeat("\n", first-1) + src
	err := yaml.UnmarshalWithOptions([]byte(padded), v, yaml.Strict())
	if err == nil {
		return true
	}
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		p.fail(max(ye.GetToken().Position.Line, first), "%s", ye.GetMessage())
	} else {
		p.fail(first, "%v", err)
	}
	return false
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
