package web

import (
	"fmt"
	"slices"
	"strings"

	"flowlab/flow"
)

// Lesson is one claim the article makes or one flaw of its code, with the
// pattern page and the one action that shows it. The start page lists every
// lesson; its link opens the page with the action's controls highlighted, so
// that from the start page a learner sees it in at most three actions: the
// link and at most two presses. Pressing stays the learner's act.
type Lesson struct {
	ID       string   // the value of ?show= on its page
	Scenario string   // the pattern page
	Flaw     bool     // a flaw of the article's code; otherwise a claim it makes
	Says     string   // the claim or the flaw, in one line
	Do       string   // what to press, in the controls' own words: the link's text
	Watch    string   // what to look at once pressed
	Controls []string // data-testid of each control to press, in order (at most two)
}

// Lessons are the article's claims and flaws, by pattern, in the order the
// article gives them.
var Lessons = []Lesson{
	{ID: "take-down", Scenario: "request-response",
		Says: "“Service availability directly affects the requestor”",
		Do:   "Take product-service down", Controls: []string{"switch-product-service"},
		Watch: "order-service's calls fail the moment product-service does: the refused counter climbs."},
	{ID: "no-timeout", Scenario: "request-response", Flaw: true,
		Says: "requests.get has no timeout: a hung callee hangs its caller",
		Do:   "Hang, then set a Timeout", Controls: []string{"knob-hang", "knob-timeout_ms"},
		Watch: "with no timeout, every call started stays blocked on order-service, and the pile grows with the load; a timeout makes each failure fast and counted."},
	{ID: "return-none", Scenario: "request-response", Flaw: true,
		Says: "return None hides why a call failed",
		Do:   "Unknown ids to 50 %, then take product-service down", Controls: []string{"knob-unknown_ids", "switch-product-service"},
		Watch: "the log says None for “no such product” and for “service down” alike; with Error handling on raise it names each cause."},
	{ID: "no-resilience", Scenario: "request-response", Flaw: true,
		Says: "No retries, no backoff, no circuit breaker",
		Do:   "Resilient, then take product-service down", Controls: []string{"preset-resilient", "switch-product-service"},
		Watch: "retries back off with jitter; after 5 failures in a row the breaker turns OPEN: calls blocked, failing fast."},

	{ID: "decoupled", Scenario: "event-driven",
		Says: "“Decouples producers and consumers”",
		Do:   "Stop inventory", Controls: []string{"knob-inventory.stop"},
		Watch: "order-service keeps publishing and email and analytics keep receiving: nobody waits for inventory."},
	{ID: "exclusive-queue", Scenario: "event-driven", Flaw: true,
		Says: "Exclusive queue: what inventory misses while down is lost",
		Do:   "Stop inventory", Controls: []string{"knob-inventory.stop"},
		Watch: "inventory's queue goes ABSENT and its lost count rises; a durable named queue (the Queue knob) keeps them."},
	{ID: "auto-ack", Scenario: "event-driven", Flaw: true,
		Says: "auto_ack=True: a crash loses what was not yet processed",
		Do:   "Send 100 orders, then Crash inventory", Controls: []string{"knob-order-service.send-100", "knob-inventory.crash"},
		Watch: "most of the 100 are lost, “auto-acked, never processed”; with Ack mode manual they come back as redeliveries."},
	{ID: "connection-per-publish", Scenario: "event-driven", Flaw: true,
		Says: "A new connection for every publish",
		Do:   "Connection: one long-lived", Controls: []string{"knob-order-service.connection"},
		Watch: "the publish cost on order-service drops: opening a connection costs several round trips to the broker."},

	{ID: "competing-consumers", Scenario: "work-queue",
		Says: "“Scales easily with multiple consumers”",
		Do:   "Send 100 orders", Controls: []string{"knob-order-service.send-100"},
		Watch: "three workers share one queue, each job goes to one of them, and the queue's ready count drains."},
	{ID: "failing-jobs", Scenario: "work-queue", Flaw: true,
		Says: "No plan for a failed job: retry later, then a DLQ",
		Do:   "Flaky mail server", Controls: []string{"preset-flaky"},
		Watch: "a failed send comes back after 250 ms, 500 ms, 1 s …; after its last attempt it waits in the DLQ."},

	{ID: "log-keeps", Scenario: "async-messaging",
		Says: "“Reliable delivery”, “resilience by decoupling”",
		Do:   "Crash m1", Controls: []string{"knob-m1-crash"},
		Watch: "m1's partitions go ORPHANED and their lag climbs; after the session timeout a rebalance hands them on and the lag drains: eventually consistent."},
	{ID: "no-consumer", Scenario: "async-messaging", Flaw: true,
		Says: "Its Kafka “Consumer” is a copy of its producer",
		Do:   "As in the article", Controls: []string{"preset-article"},
		Watch: "with no consumer, records pile up “in the log, not yet processed”, none lost; press Add a member and it catches up."},
	{ID: "flush-each", Scenario: "async-messaging", Flaw: true,
		Says: "p.flush() after every record",
		Do:   "Send 1000, then untick Flush after every record and Send 1000 again", Controls: []string{"knob-send-1000", "knob-flush-each"},
		Watch: "order-service's “last burst: 1000 in … s” waits a round trip to the broker per record; batched, the same burst takes a few milliseconds."},
	{ID: "duplicates", Scenario: "async-messaging", Flaw: true,
		Says: "Auto-commit: a crash makes work be done twice",
		Do:   "Crash m2, then tick Idempotent consumer", Controls: []string{"knob-m2-crash", "knob-idempotent"},
		Watch: "after the rebalance, records processed but uncommitted are processed again: duplicates rise, until the consumer is idempotent."},
	{ID: "partitions", Scenario: "async-messaging", Flaw: true,
		Says: "More consumers scale Kafka only up to its partitions",
		Do:   "Add a member", Controls: []string{"knob-add-member"},
		Watch: "with 3 partitions a fourth member gets none: it stands idle."},
	{ID: "replay", Scenario: "async-messaging",
		Says: "“Reliable delivery”: the log keeps records to read again",
		Do:   "Replay from the earliest offset", Controls: []string{"knob-replay-earliest"},
		Watch: "the group goes back to offset 0 and processes every record again."},
}

// LessonFor is the lesson a pattern page was asked to show. An unknown
// value is refused with the values its page knows.
func LessonFor(scenario, id string) (Lesson, error) {
	var known []string
	for _, l := range Lessons {
		if l.Scenario != scenario {
			continue
		}
		if l.ID == id {
			return l, nil
		}
		known = append(known, l.ID)
	}
	if len(known) == 0 {
		return Lesson{}, flow.Errorf(flow.Invalid, "the %s page has nothing to show (show=%q)", scenario, id)
	}
	return Lesson{}, flow.Errorf(flow.Invalid, "the %s page cannot show %q: it can show %s", scenario, id, strings.Join(known, ", "))
}

// Href is the lesson's link in a lab.
func (l Lesson) Href(lab string) string {
	return fmt.Sprintf("/labs/%s/%s?show=%s", lab, l.Scenario, l.ID)
}

// Start is what the start page needs: the lab its links open, the lessons
// grouped by pattern, and the walkthroughs grouped by pattern.
type Start struct {
	Lab      string
	Patterns []StartPattern
	Walks    []StartWalks
}

// StartWalks is one pattern's walkthroughs on the start page.
type StartWalks struct {
	Title string
	Walks []StartWalk
}

// StartWalk is one walkthrough on the start page, with how far this learner
// got in it.
type StartWalk struct {
	ID, Pattern, Title string
	Minutes            int
	Learn              string // what it teaches: the first thing it names
	Steps              int
	Done               int  // steps this learner has done
	Started, Finished  bool // this learner's
}

// GroupWalks groups walks under their patterns' titles, in the order the
// titles are given; a walk of a pattern not given is left out.
func GroupWalks(walks []StartWalk, titles map[string]string, order []string) []StartWalks {
	var groups []StartWalks
	for _, name := range order {
		g := StartWalks{Title: titles[name]}
		for _, w := range walks {
			if w.Pattern == name {
				g.Walks = append(g.Walks, w)
			}
		}
		if len(g.Walks) > 0 {
			groups = append(groups, g)
		}
	}
	return groups
}

// Progress is how far the learner got, in words: "3 of 7 steps", or ""
// before they start or once they finish (the tick says it then).
func (w StartWalk) Progress() string {
	if !w.Started || w.Finished {
		return ""
	}
	return fmt.Sprintf("%d of %d steps", w.Done, w.Steps)
}

// StartPattern is one pattern's lessons on the start page.
type StartPattern struct {
	Title   string
	Lessons []Lesson
}

// NewStart groups the lessons under their patterns' titles, in the order
// the titles are given.
func NewStart(lab string, titles map[string]string, order []string) Start {
	s := Start{Lab: lab}
	for _, name := range order {
		p := StartPattern{Title: titles[name]}
		for _, l := range Lessons {
			if l.Scenario == name {
				p.Lessons = append(p.Lessons, l)
			}
		}
		if len(p.Lessons) > 0 {
			s.Patterns = append(s.Patterns, p)
		}
	}
	return s
}

// shownStep is where a control stands in the shown lesson: 1 for the first to
// press, 2 for the next; 0 for a control the lesson does not name.
func shownStep(show *Lesson, testid string) int {
	if show == nil {
		return 0
	}
	return slices.Index(show.Controls, testid) + 1
}
