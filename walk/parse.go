package walk

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

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
