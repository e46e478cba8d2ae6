package walk

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/goccy/go-yaml"
	yamlast "github.com/goccy/go-yaml/ast"

	"flowlab/flow"
)

// maxWait is the longest pause a command list may hold.
const maxWait = 60 * time.Second

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
	kvs, ok := entries(n.node)
	if !ok {
		p.fail(n.line, "%s", shapes)
		return Command{}, false
	}
	fields := map[string]yamlast.Node{}
	for _, kv := range kvs {
		k := keyOf(kv)
		if !slices.Contains([]string{"set", "value", "preset", "wait", "reset"}, k) {
			p.fail(lineOf(kv.Key), "unknown field %q: %s", k, shapes)
			return Command{}, false
		}
		if fields[k] != nil {
			p.fail(lineOf(kv.Key), "duplicate field %q", k)
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
			line := n.line
			if v := fields["value"]; v != nil {
				line = lineOf(v)
			}
			p.fail(line, "%s: %s", c.Set, flow.MessageOf(err))
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
			p.fail(n.line, "wait: takes a duration from 1ms to %.0fs, such as 5s", maxWait.Seconds())
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
