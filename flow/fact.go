package flow

import (
	"fmt"
	"strconv"
	"strings"
)

// Fact is one typed piece of a node's state: a stable name and a value a
// program reads (a walkthrough check such as facts["inventory"]["lost"] > 0),
// and the badge the page draws, formatted from that same value when the fact
// is made, so the picture and the program never disagree.
//
// Make facts with Count, Measure, Flag, Word and Numbers; a node sends every
// fact docs/FACTS.md lists for it in every frame, whatever its mode, so a
// check can read any of them at any time. A fact that is not worth drawing
// right now (a zero, a mode not in use) is still sent, with no badge.
type Fact struct {
	Name  string `json:"name"`
	Value any    `json:"value"`           // int64, float64, bool, string or []int
	Badge string `json:"badge,omitempty"` // "" when the page draws nothing for it
}

// Count is a whole number: a depth, a lag, a count of consumers. format has
// one %d verb; "" never draws it.
func Count(name string, v int64, format string) Fact {
	return Fact{Name: name, Value: v, Badge: sprintf(format, v)}
}

// Measure is a measured quantity: a latency, a rate. format has one verb
// for a float64 (%.0f, %.2f); "" never draws it.
func Measure(name string, v float64, format string) Fact {
	return Fact{Name: name, Value: v, Badge: sprintf(format, v)}
}

// Flag is a yes or no: durable, paused, confirms on. badge is drawn when v
// is true.
func Flag(name string, v bool, badge string) Fact {
	f := Fact{Name: name, Value: v}
	if v {
		f.Badge = badge
	}
	return f
}

// Word is a value from a short list (an ack mode, a broker's name) or a
// sentence (the last error). format has one %s verb; nothing is drawn for
// "".
func Word(name, v, format string) Fact {
	f := Fact{Name: name, Value: v}
	if v != "" {
		f.Badge = sprintf(format, v)
	}
	return f
}

// Numbers is a set of small numbers, such as the partitions assigned to a
// member, never nil so a program reads [] rather than null. format has one
// verb for the whole slice.
func Numbers(name string, v []int, format string) Fact {
	if v == nil {
		v = []int{}
	}
	return Fact{Name: name, Value: v, Badge: sprintf(format, v)}
}

// When keeps the fact's badge only if draw holds: the value is still sent.
func (f Fact) When(draw bool) Fact {
	if !draw {
		f.Badge = ""
	}
	return f
}

// sprintf is fmt.Sprintf of one value, without fmt for the common formats
// with a lone %d or %s: every watched node makes its badges ten times a
// second.
func sprintf(format string, v any) string {
	if format == "" {
		return ""
	}
	if strings.Count(format, "%") == 1 {
		switch v := v.(type) {
		case int64:
			if before, after, ok := strings.Cut(format, "%d"); ok {
				// One allocation, the badge's: FormatInt and + would make two.
				var buf [48]byte
				b := strconv.AppendInt(append(buf[:0], before...), v, 10)
				return string(append(b, after...))
			}
		case string:
			if before, after, ok := strings.Cut(format, "%s"); ok {
				return before + v + after
			}
		}
	}
	return fmt.Sprintf(format, v)
}

// Badges are the texts the page draws for facts, in order.
func Badges(facts []Fact) []string {
	var out []string
	for _, f := range facts {
		if f.Badge != "" {
			out = append(out, f.Badge)
		}
	}
	return out
}

// Value is the value of the fact called name, if the node sends one.
func (s NodeState) Value(name string) (any, bool) {
	for _, f := range s.Facts {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// Badges are the texts the page draws on the node, from its facts.
func (s NodeState) Badges() []string { return Badges(s.Facts) }
