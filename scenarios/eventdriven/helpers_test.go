package eventdriven_test

import (
	"testing"

	"go.uber.org/goleak"

	"flowlab/flow"
	"flowlab/scenarios/eventdriven"
	"flowlab/scenarios/internal/rabbittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var consumers = []string{"inventory", "email", "analytics"}

// lab is one running scenario with a lab of its own.
type lab struct {
	*eventdriven.Scenario
	lab  *flow.Lab
	sink *rabbittest.Sink
}

// MustStart opens and runs the scenario in a fresh lab against url, paused
// (rate 0) and with instant processing, and at cleanup stops it, checks that
// Run returned nil, and deletes everything the lab declared.
func MustStart(tb testing.TB, url string) *lab {
	tb.Helper()
	return mustStartWith(tb, url, &rabbittest.Sink{})
}

// mustStartWith is MustStart with events going to to, which l.sink then
// does not see.
func mustStartWith(tb testing.TB, url string, to flow.Sink) *lab {
	tb.Helper()
	return mustStartSampled(tb, url, to, 0)
}

// mustStartSampled is mustStartWith with an emitter that passes about
// perSecond message hops a second, as the server's does (0: every hop).
func mustStartSampled(tb testing.TB, url string, to flow.Sink, perSecond int) *lab {
	tb.Helper()
	l := rabbittest.MustLab(tb)
	em := flow.NewEmitter(l, eventdriven.Name, to).Sample(perSecond)
	s, err := eventdriven.Open(eventdriven.Config{AMQPURL: url, Lab: l, Emit: em})
	if err != nil {
		tb.Fatal(err)
	}
	lb := &lab{Scenario: s, lab: l}
	lb.sink, _ = to.(*rabbittest.Sink)
	rabbittest.MustSet(tb, lb, "order-service.rate", 0)
	for _, c := range consumers {
		rabbittest.MustSet(tb, lb, c+".processing", 0)
	}
	tb.Cleanup(func() { deleteTopology(tb, url, l) })
	rabbittest.Run(tb, s.Run)
	return lb
}

// publishedID is the id of the nth event order-service published, from 1.
func (l *lab) publishedID(n int) string {
	for _, e := range l.sink.Events() {
		if e.Kind == flow.KindPublish && e.From == "order-service" {
			if n--; n == 0 {
				return e.MsgID
			}
		}
	}
	return ""
}

// deleteTopology removes what a lab declared.
func deleteTopology(tb testing.TB, url string, l *flow.Lab) {
	var queues []string
	for _, c := range consumers {
		queues = append(queues, l.Name("ecommerce."+c))
	}
	queues = append(queues, l.Name("ecommerce.dlq"))
	rabbittest.DeleteTopology(tb, url, queues, []string{l.Name("ecommerce.dlx"), l.Name("ecommerce")})
}

// count is a node's whole-number fact; one the node does not send reads 0.
func count(ns flow.NodeState, name string) int64 {
	v, _ := ns.Value(name)
	n, _ := v.(int64)
	return n
}

// flag is a node's yes-or-no fact; one the node does not send reads false.
func flag(ns flow.NodeState, name string) bool {
	v, _ := ns.Value(name)
	b, _ := v.(bool)
	return b
}

// word is a node's text fact; one the node does not send reads "".
func word(ns flow.NodeState, name string) string {
	v, _ := ns.Value(name)
	w, _ := v.(string)
	return w
}

func part(st flow.Stats, name string) int64 {
	for _, p := range st.Ledger.Parts {
		if p.Name == name {
			return p.Value
		}
	}
	panic("no ledger part " + name)
}

// mustBalance checks the ledger and every consumer's own account.
func mustBalance(tb testing.TB, st flow.Stats) {
	tb.Helper()
	rabbittest.MustBalance(tb, st)
	published := rabbittest.Counter(st, "published")
	for _, c := range consumers {
		sum := rabbittest.Counter(st, c+".acked") + rabbittest.Counter(st, c+".in-flight") + rabbittest.Counter(st, c+".dead-lettered") + rabbittest.Counter(st, c+".lost")
		if sum != published {
			tb.Fatalf("%s accounts for %d copies of %d published:\n%s", c, sum, published, rabbittest.Describe(st))
		}
	}
}
