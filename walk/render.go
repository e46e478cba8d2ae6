package walk

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/util"
)

// text is a step's Markdown rendered once at load, or a plain-text template
// (measured), whose {{ expr }} placeholders are filled in when it is shown.
// Each placeholder stands in the rendered text as a mark no Markdown touches.
type text struct {
	out   string     // rendered HTML or plain text, with marks
	parts []*program // the placeholders, in order
	html  bool       // values are HTML-escaped as they go in
}

// The mark of placeholder i is markOpen + i + markClose: private-use
// characters, which neither Markdown nor HTML escaping change.
const (
	markOpen  = "\uE000"
	markClose = "\uE001"
)

// markdown renders the CommonMark a walk is written in. Raw HTML is escaped,
// so a walk shows what it says and never injects markup into the page.
var markdown = goldmark.New(goldmark.WithRendererOptions(
	renderer.WithNodeRenderers(util.Prioritized(escapeRawHTML{}, 100))))

// parseText splits src (which starts at line first of file) into text and
// placeholders, compiles each placeholder, and renders the text as Markdown
// when asHTML.
func parseText(c *compiler, src string, first int, asHTML bool) (*text, []error) {
	var (
		b    strings.Builder
		t    = &text{html: asHTML}
		errs []error
		rest = src
	)
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		line := first + strings.Count(src[:len(src)-len(rest)+i], "\n")
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			errs = append(errs, c.errorf(line, "a {{ has no }} to close it"))
			break
		}
		p, err := c.compile(rest[i+2:i+j], line, anyResult)
		if err != nil {
			errs = append(errs, err...)
		}
		fmt.Fprintf(&b, "%s%d%s", markOpen, len(t.parts), markClose)
		t.parts = append(t.parts, p)
		rest = rest[i+j+2:]
	}
	if !asHTML {
		t.out = b.String()
		return t, errs
	}
	var out bytes.Buffer
	if err := markdown.Convert([]byte(b.String()), &out); err != nil {
		errs = append(errs, c.errorf(first, "the Markdown does not render: %v", err))
	}
	t.out = out.String()
	return t, errs
}

// fill puts the values of the placeholders, evaluated in e, into the text. A
// placeholder that fails shows a question mark rather than hiding the text.
func (t *text) fill(e *env) string {
	if t == nil {
		return ""
	}
	if len(t.parts) == 0 {
		return t.out
	}
	var b strings.Builder
	rest := t.out
	for {
		i := strings.Index(rest, markOpen)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		rest = rest[i+len(markOpen):]
		j := strings.Index(rest, markClose)
		n, _ := strconv.Atoi(rest[:j])
		rest = rest[j+len(markClose):]
		s := "?"
		if v, err := t.parts[n].run(e); err == nil {
			s = format(v)
		}
		if t.html {
			s = html.EscapeString(s)
		}
		b.WriteString(s)
	}
}

// format writes a value as a learner reads it: whole numbers without a
// fraction, others to two places.
func format(v any) string {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	case float32:
		return format(float64(v))
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// escapeRawHTML renders raw HTML as the text it is.
type escapeRawHTML struct{}

func (escapeRawHTML) RegisterFuncs(r renderer.NodeRendererFuncRegisterer) {
	r.Register(ast.KindRawHTML, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			segs := n.(*ast.RawHTML).Segments
			for i := range segs.Len() {
				seg := segs.At(i)
				_, _ = w.WriteString(html.EscapeString(string(seg.Value(src))))
			}
		}
		return ast.WalkSkipChildren, nil
	})
	r.Register(ast.KindHTMLBlock, func(w util.BufWriter, src []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		b := n.(*ast.HTMLBlock)
		if !entering {
			return ast.WalkContinue, nil
		}
		_, _ = w.WriteString("<p>")
		lines := b.Lines()
		for i := range lines.Len() {
			line := lines.At(i)
			_, _ = w.WriteString(html.EscapeString(string(line.Value(src))))
		}
		if b.HasClosure() {
			_, _ = w.WriteString(html.EscapeString(string(b.ClosureLine.Value(src))))
		}
		_, _ = w.WriteString("</p>\n")
		return ast.WalkContinue, nil
	})
}
