package walk_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"flowlab/walk"
)

// head is a valid header, lines 1 to 6.
const head = `---
title: T
pattern: event-driven
minutes: 3
learn: [a thing]
---
`

// okCheck is a valid check step for the end of a file.
const okCheck = "## Check: c\n```step\ncheck: delta[\"published\"] > 0\nwithin: 5s\nhint: h\n```\n"

func load(t *testing.T, src string) error {
	t.Helper()
	_, err := walk.Load(fstest.MapFS{"bad.md": {Data: []byte(src)}}, catalogs(t))
	return err
}

// TestLoadRefuses pins each refusal to its file and line.
func TestLoadRefuses(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no header", "## Read: r\n", "walks/bad.md:1: a walk starts with a YAML header"},
		{"unclosed header", "---\ntitle: T\n", "walks/bad.md:1: the YAML header has no closing ---"},
		{"unknown pattern", strings.Replace(head, "event-driven", "carrier-pigeon", 1) + okCheck,
			`walks/bad.md:3: unknown pattern "carrier-pigeon"`},
		{"unknown header field", strings.Replace(head, "minutes: 3", "minutes: 3\nauthor: me", 1) + okCheck,
			`walks/bad.md:5: unknown field "author"`},
		{"duplicate header key", strings.Replace(head, "minutes: 3", "minutes: 3\nminutes: 4", 1) + okCheck,
			`walks/bad.md:5: mapping key "minutes" already defined`},
		{"no minutes", strings.Replace(head, "minutes: 3\n", "", 1) + okCheck, "walks/bad.md:1: the header needs minutes"},
		{"unknown preset in setup", strings.Replace(head, "learn: [a thing]", "learn: [a thing]\nsetup:\n  - preset: fast", 1) + okCheck,
			`walks/bad.md:7: unknown preset "fast"`},
		{"text before the steps", head + "\nHello.\n" + okCheck, "walks/bad.md:8: text before the first step"},
		{"unknown step kind", head + "## Quiz: q\n" + okCheck, `walks/bad.md:7: unknown step kind "Quiz"`},
		{"unknown step field", head + "## Read: r\n```step\nnodez: [inventory]\n```\n" + okCheck,
			`walks/bad.md:9: unknown field "nodez"`},
		{"field of another kind", head + "## Read: r\n```step\nwithin: 5s\n```\n" + okCheck,
			"walks/bad.md:9: a read step takes no within"},
		{"duplicate step key", head + "## Read: r\n```step\nnodes: [inventory]\nnodes: [email]\n```\n" + okCheck,
			`walks/bad.md:10: mapping key "nodes" already defined`},
		{"yaml syntax in a step", head + "## Read: r\n```step\nnodes: [inventory\n```\n" + okCheck, "walks/bad.md:9:"},
		{"unknown node", head + "## Read: r\n```step\nnodes: [inventry]\n```\n" + okCheck, `walks/bad.md:9: unknown node "inventry"`},
		{"step block not after heading", head + "## Read: r\nText.\n```step\nnodes: [inventory]\n```\n" + okCheck,
			"walks/bad.md:9: a ```step block must come right after"},
		{"unknown counter", head + "## Check: c\n```step\ncheck: delta[\"inventory.lots\"] > 0\nwithin: 5s\nhint: h\n```\n",
			`walks/bad.md:9: unknown counter "inventory.lots"`},
		{"non-literal key", head + "## Check: c\n```step\ncheck: counters[\"pub\" + \"lished\"] > 0\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: counters must be indexed by a name in quotes"},
		{"bare map", head + "## Check: c\n```step\ncheck: len(counters) > 0\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: counters must be indexed by a name in quotes"},
		{"unknown fact", head + "## Check: c\n```step\ncheck: facts[\"queue-inventory\"][\"depth\"] > 0\nwithin: 5s\nhint: h\n```\n",
			`walks/bad.md:9: node queue-inventory has no fact "depth"`},
		{"fact of the wrong type", head + "## Check: c\n```step\ncheck: facts[\"queue-inventory\"][\"exists\"] > 0\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: invalid operation: > (mismatched types bool and int)"},
		{"a block scalar's second line", head + "## Check: c\n```step\ncheck: |\n  delta[\"published\"] > 0 &&\n  state[\"inventry\"] == \"up\"\nwithin: 5s\nhint: h\n```\n",
			`walks/bad.md:11: unknown node "inventry"`},
		{"unknown knob in knobs", head + "## Check: c\n```step\ncheck: knobs[\"inventory.speed\"] == 1\nwithin: 5s\nhint: h\n```\n",
			`walks/bad.md:9: unknown knob "inventory.speed"`},
		{"a button in knobs", head + "## Check: c\n```step\ncheck: knobs[\"inventory.stop\"] == nil\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: knob inventory.stop is a button: it has no value to read"},
		{"unknown event kind", head + "## Check: c\n```step\ncheck: events[\"publsh\"] > 0\nwithin: 5s\nhint: h\n```\n",
			`walks/bad.md:9: unknown event kind "publsh"`},
		{"unknown name", head + "## Check: c\n```step\ncheck: countrs[\"published\"] > 0\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: unknown name countrs"},
		{"check not bool", head + "## Check: c\n```step\ncheck: delta[\"published\"]\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: expected bool"},
		{"check does not compile", head + "## Check: c\n```step\ncheck: delta[\"published\"] >\nwithin: 5s\nhint: h\n```\n",
			"walks/bad.md:9: unexpected token"},
		{"check without within", head + "## Check: c\n```step\ncheck: delta[\"published\"] > 0\nhint: h\n```\n",
			"walks/bad.md:7: a check step needs within"},
		{"bad within", head + "## Check: c\n```step\ncheck: delta[\"published\"] > 0\nwithin: soon\nhint: h\n```\n",
			`walks/bad.md:10: within: "soon" is no duration`},
		{"predict without choices", head + "## Predict: p\n```step\noutcome: '\"a\"'\n```\n" + okCheck,
			"walks/bad.md:7: a predict step needs choices"},
		{"outcome naming no choice", head + "## Predict: p\n```step\nchoices: {a: A, b: B}\noutcome: 'delta[\"published\"] > 0 ? \"a\" : \"c\"'\n```\n" + okCheck,
			`walks/bad.md:10: outcome can give "c", which is no choice id`},
		{"duplicate choice", head + "## Predict: p\n```step\nchoices:\n  a: A\n  b: B\n  a: C\noutcome: '\"a\"'\n```\n" + okCheck,
			`walks/bad.md:12: mapping key "a" already defined`},
		{"quoted choice ids", head + "## Predict: p\n```step\nchoices: {\"a\": A, 'b': B}\noutcome: '\"c\"'\n```\n" + okCheck,
			`walks/bad.md:10: outcome can give "c", which is no choice id of this step`},
		{"one choice", head + "## Predict: p\n```step\nchoices:\n  a: A\noutcome: '\"a\"'\n```\n" + okCheck,
			"walks/bad.md:10: a predict step needs choices: at least 2"},
		{"outcome not a string", head + "## Predict: p\n```step\nchoices: {a: A, b: B}\noutcome: 'delta[\"published\"]'\n```\n" + okCheck,
			"walks/bad.md:10: expected string"},
		{"predict with no check after it", head + "## Predict: p\n```step\nchoices: {a: A, b: B}\noutcome: '\"a\"'\n```\n",
			"walks/bad.md:7: no check follows this predict step"},
		{"unknown knob in do", head + "## Act: a\n```step\ndo:\n  - set: inventory.pause\n```\n" + okCheck,
			`walks/bad.md:10: unknown knob "inventory.pause"`},
		{"bad knob value", head + "## Act: a\n```step\ndo:\n  - set: order-service.rate\n    value: 9000\n```\n" + okCheck,
			"walks/bad.md:11: order-service.rate: Orders per second must be from 1 to 500"},
		{"value for a button", head + "## Act: a\n```step\ndo:\n  - set: inventory.stop\n    value: true\n```\n" + okCheck,
			"walks/bad.md:11: inventory.stop: Stop is a button: it takes no value"},
		{"unknown command field", head + "## Act: a\n```step\ndo:\n  - sett: inventory.stop\n```\n" + okCheck,
			`walks/bad.md:10: unknown field "sett"`},
		{"two commands in one", head + "## Act: a\n```step\ndo:\n  - set: inventory.stop\n    preset: article\n```\n" + okCheck,
			"walks/bad.md:10: a command is one of"},
		{"wait too long", head + "## Act: a\n```step\ndo:\n  - wait: 2m\n```\n" + okCheck,
			"walks/bad.md:10: wait: takes a duration from 1ms to 60s"},
		{"placeholder naming an unknown counter", head + "## Explain: e\nYou lost {{ delta[\"lots\"] }}.\n",
			`walks/bad.md:8: unknown counter "lots"`},
		{"unclosed placeholder", head + "## Explain: e\n\nYou lost {{ delta[\"lost\"].\n",
			"walks/bad.md:9: a {{ has no }}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := load(t, tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load =\n%v\nwant an error containing\n%s", err, tc.want)
			}
		})
	}
}

// TestLoadListsEveryProblem: one run names every broken file and line.
func TestLoadListsEveryProblem(t *testing.T) {
	fsys := fstest.MapFS{
		"a.md": {Data: []byte(head + "## Read: r\n```step\nnodes: [nope]\n```\n" + okCheck)},
		"b.md": {Data: []byte(head + "## Check: c\n```step\ncheck: delta[\"nope\"] > 0\nwithin: 5s\nhint: h\n```\n")},
		"c.md": {Data: []byte(head + okCheck)},
	}
	ws, err := walk.Load(fsys, catalogs(t))
	if ws != nil {
		t.Errorf("Load returned walks with an error: %d", len(ws))
	}
	for _, want := range []string{`walks/a.md:9: unknown node "nope"`, `walks/b.md:9: unknown counter "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v, want it to say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "c.md") {
		t.Errorf("Load blamed the valid file: %v", err)
	}
}

// TestRawHTMLIsEscaped: a walk shows markup as text, never injects it.
func TestRawHTMLIsEscaped(t *testing.T) {
	src := head + "## Read: r\nHello <script>alert(1)</script> **there**.\n\n<div onclick=x>block</div>\n\n" + okCheck
	ws, err := walk.Load(fstest.MapFS{"ok.md": {Data: []byte(src)}}, catalogs(t))
	if err != nil {
		t.Fatal(err)
	}
	s := startSession(t, ws[0], newLab())
	html := s.State().Steps[0].HTML
	if strings.Contains(html, "<script") || strings.Contains(html, "<div") || !strings.Contains(html, "&lt;script&gt;") ||
		!strings.Contains(html, "<strong>there</strong>") || !strings.Contains(html, "&lt;div onclick=x&gt;") {
		t.Errorf("html = %s", html)
	}
}

// TestPlaceholdersFormatNumbers: whole numbers without a fraction, others to
// two places, and values are escaped.
func TestPlaceholdersFormatNumbers(t *testing.T) {
	src := head + "## Read: r\nA {{ 2.5 * 2 }}, b {{ 1 / 3 }}, c {{ \"<i>\" }}, d `{{ 7 }}`.\n\n" + okCheck
	ws, err := walk.Load(fstest.MapFS{"ok.md": {Data: []byte(src)}}, catalogs(t))
	if err != nil {
		t.Fatal(err)
	}
	s := startSession(t, ws[0], newLab())
	if got, want := s.State().Steps[0].HTML, "<p>A 5, b 0.33, c &lt;i&gt;, d <code>7</code>.</p>\n"; got != want {
		t.Errorf("html = %q, want %q", got, want)
	}
}
