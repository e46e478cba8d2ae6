package main

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"flowlab/flow"
)

// presenting is what a page's ?present= and ?spotlight= ask for: presenter
// mode (large type for a projector) and, in it, whose lab it spotlights.
type presenting struct {
	On bool
	// Off: present=0 asks the page to leave presenter mode, which its
	// browser tab otherwise keeps.
	Off       bool
	Spotlight string // a learner's display name, "" when none or not one
}

// maxSpotlight is the longest display name a class allows.
const maxSpotlight = 24

// presentingOf reads ?present= and ?spotlight= strictly: each at most once,
// present only 1 or 0, spotlight only with present=1. A spotlight name is
// display text only: one that is not a class's display name is left out,
// and the page shows no name rather than an odd one.
func presentingOf(r *http.Request) (presenting, error) {
	q := r.URL.Query()
	var p presenting
	if values, ok := q["present"]; ok {
		if len(values) != 1 {
			return p, flow.Errorf(flow.Invalid, "present is given %d times: give it once", len(values))
		}
		switch values[0] {
		case "1":
			p.On = true
		case "0":
			p.Off = true
		default:
			return p, flow.Errorf(flow.Invalid, "present is 1 (presenter mode: large type for a projector) or 0 (leave it), not %q", clip(values[0]))
		}
	}
	if values, ok := q["spotlight"]; ok {
		if len(values) != 1 {
			return p, flow.Errorf(flow.Invalid, "spotlight is given %d times: give it once", len(values))
		}
		if !p.On {
			return p, flow.Errorf(flow.Invalid, "spotlight shows a learner's lab in presenter mode: give it with present=1")
		}
		p.Spotlight, _ = spotlightName(values[0])
	}
	return p, nil
}

// spotlightName is name as a class shows it: trimmed, 1 to 24 letters,
// digits, spaces and - _ . ' — the characters a learner's name may have.
func spotlightName(name string) (string, bool) {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxSpotlight {
		return "", false
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune(" -_.'", c) {
			return "", false
		}
	}
	return name, true
}

// clip keeps an error page's echo of a bad value short.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}
