package web

import "flowlab/flow"

// Present is presenter mode as a page's address asks for it: large type and
// high contrast for a projector, the knobs folded, a key for each main
// failure; a spotlight shows a learner's lab in it, read-only.
type Present struct {
	On        bool
	Off       bool   // present=0: the page leaves presenter mode, which its tab otherwise keeps
	Spotlight string // the learner whose lab this is, display text only; "" when none
}

// Shortcut is one key of presenter mode: it presses the page's own control
// of a knob (a take-down switch, an action button or an on/off box), as the
// node's menu does, so it sends the same validated command.
type Shortcut struct {
	Key   string // one capital letter
	Knob  string
	Label string // what the key does, in the room's words
}

// shortcuts are each pattern's main failures and their way back, one
// letter each: the same letter means the same thing on every page where
// it is (B a burst, S stop, C crash, R restart, N cut the network path,
// U restore it).
var shortcuts = map[string][]Shortcut{
	"request-response": {
		{Key: "D", Knob: "up", Label: "product-service down/up"},
		{Key: "H", Knob: "hang", Label: "Hang / let go"},
	},
	"event-driven": {
		{Key: "B", Knob: "order-service.send-100", Label: "Burst of 100"},
		{Key: "S", Knob: "inventory.stop", Label: "Stop inventory"},
		{Key: "C", Knob: "inventory.crash", Label: "Crash inventory"},
		{Key: "R", Knob: "inventory.restart", Label: "Restart inventory"},
		{Key: "N", Knob: "broker.cut", Label: "Cut the path"},
		{Key: "U", Knob: "broker.restore", Label: "Restore the path"},
	},
	"work-queue": {
		{Key: "B", Knob: "order-service.send-100", Label: "Burst of 100"},
		{Key: "S", Knob: "worker-1.stop", Label: "Stop worker-1"},
		{Key: "C", Knob: "worker-1.crash", Label: "Crash worker-1"},
		{Key: "R", Knob: "worker-1.restart", Label: "Restart worker-1"},
		{Key: "A", Knob: "emails.add-worker", Label: "Add a worker"},
		{Key: "N", Knob: "broker.cut", Label: "Cut the path"},
		{Key: "U", Knob: "broker.restore", Label: "Restore the path"},
	},
	"async-messaging": {
		{Key: "B", Knob: "send-1000", Label: "Burst of 1000"},
		{Key: "C", Knob: "m1-crash", Label: "Crash m1"},
		{Key: "R", Knob: "m1-restart", Label: "Restart m1"},
		{Key: "A", Knob: "add-member", Label: "Add a member"},
		{Key: "X", Knob: "crash-all", Label: "Crash them all"},
		{Key: "N", Knob: "cut-path", Label: "Cut the path"},
		{Key: "U", Knob: "restore-path", Label: "Restore the path"},
	},
	"compare": {
		{Key: "D", Knob: "inventory.up", Label: "Inventory down / up"},
	},
}

// ShortcutsFor are the keys of pattern whose knob the page draws, as a
// button or an on/off box, in the table's order.
func ShortcutsFor(pattern string, knobs []flow.Knob) []Shortcut {
	pressable := map[string]bool{}
	for _, k := range knobs {
		if k.Type == flow.ActionKnob || k.Type == flow.BoolKnob {
			pressable[k.Name] = true
		}
	}
	var out []Shortcut
	for _, s := range shortcuts[pattern] {
		if pressable[s.Knob] {
			out = append(out, s)
		}
	}
	return out
}

// shortcutKey is the key of knob among ss, "" when it has none.
func shortcutKey(ss []Shortcut, knob string) string {
	for _, s := range ss {
		if s.Knob == knob {
			return s.Key
		}
	}
	return ""
}

// bodyClass is the page's class on <body>: "presenter" in presenter mode.
func bodyClass(p Present) string {
	if p.On {
		return "presenter"
	}
	return ""
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
