package walk

import (
	"errors"
	"strings"

	yamlast "github.com/goccy/go-yaml/ast"

	"github.com/goccy/go-yaml"
)

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

// entries are the key-value pairs of a YAML map, false when n is no map.
func entries(n yamlast.Node) ([]*yamlast.MappingValueNode, bool) {
	switch n := n.(type) {
	case *yamlast.MappingNode:
		return n.Values, true
	case *yamlast.MappingValueNode:
		return []*yamlast.MappingValueNode{n}, true
	}
	return nil, false
}

// keyOf is a map key as written, without its quotes.
func keyOf(kv *yamlast.MappingValueNode) string {
	var k string
	if yaml.NodeToValue(kv.Key, &k) != nil {
		return kv.Key.String()
	}
	return k
}

// lineOf is the line a node is on.
func lineOf(n yamlast.Node) int { return n.GetToken().Position.Line }
