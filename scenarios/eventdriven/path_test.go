package eventdriven_test

import (
	"net"
	"slices"
	"testing"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// Cutting the path gives every sample service a real error; the watcher,
// connected directly, still sees the broker. After restore every service
// reconnects by itself, declares its topology again and work goes on.
func TestCutPathServicesSeeErrorsAndReconnect(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.MustSet(t, l, "order-service.rate", 50)
	services := append([]string{"order-service"}, consumers...)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "orders flowing to every consumer", func(st flow.Stats) bool {
		return reliableUp(st) && rabbittest.Counter(st, "inventory.acked") > 5 && rabbittest.Counter(st, "analytics.acked") > 5
	})

	rabbittest.MustSet(t, l, "broker.cut", nil)
	cut := rabbittest.WaitFor(t, l, 5*time.Second, "every service unreachable", rabbittest.AllUnreachable(services...))
	if cut.Nodes["exchange"].State != "up" || !flag(cut.Nodes["exchange"], "path-cut") {
		t.Errorf("exchange while the path is cut: %+v, want up with path-cut", cut.Nodes["exchange"])
	}
	for _, s := range services {
		if !rabbittest.HasBadge(cut.Nodes[s], "broker ") {
			t.Errorf("%s while cut: badges %v, want the broker named", s, cut.Nodes[s].Badges())
		}
		lost := l.sink.Count(func(e flow.Event) bool {
			return e.Kind == flow.KindState && e.From == s && e.Detail.Error != "" && e.Detail.LatencyMS > 0
		})
		if lost == 0 {
			t.Errorf("%s: no state event saying it lost the broker, with the error and the detection delay", s)
		}
	}
	if err := rabbittest.Set(l, "broker.cut", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("cutting a cut path: %v", err)
	}

	before := rabbittest.Counter(cut, "inventory.acked")
	rabbittest.MustSet(t, l, "broker.restore", nil)
	st = rabbittest.WaitFor(t, l, 15*time.Second, "every service back and orders acked again", func(st flow.Stats) bool {
		return rabbittest.AllUp(services...)(st) && rabbittest.Counter(st, "inventory.acked") > before+5
	})
	mustBalance(t, st)
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}

// Latency on the path slows every publish-confirm round trip by about as much.
func TestPathLatencyShowsInPublishCost(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	mustApply(t, l, "reliable")
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", reliableUp)
	rabbittest.MustSet(t, l, "broker.latency", 200)
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "a few confirmed", func(st flow.Stats) bool { return rabbittest.Counter(st, "confirmed") >= 3 })
	rabbittest.MustSet(t, l, "order-service.rate", 0)
	var costs []float64
	for _, e := range l.sink.Events() {
		if e.Kind == flow.KindAck && e.To == "order-service" {
			costs = append(costs, e.Detail.LatencyMS)
		}
	}
	for _, c := range costs[1:] { // the first may have met the latency change half-way
		if c < 190 || c > 1000 {
			t.Errorf("publish-confirm round trip %.1f ms with 200 ms path latency", c)
		}
	}
	rabbittest.MustSet(t, l, "broker.latency", 0)
}

// With no broker at all, Run keeps trying and says so on every node, and
// still ends cleanly.
func TestNoBrokerIsShownAndRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	l := MustStart(t, "amqp://guest:guest@"+addr+"/")
	rabbittest.MustSet(t, l, "order-service.rate", 5)
	st := rabbittest.WaitFor(t, l, 5*time.Second, "every node unreachable",
		rabbittest.AllUnreachable("exchange", "order-service", "inventory", "email", "analytics"))
	if !rabbittest.HasBadge(st.Nodes["exchange"], addr) {
		t.Errorf("exchange badges %v, want the broker's address %s", st.Nodes["exchange"].Badges(), addr)
	}
	for _, n := range st.Nodes {
		if rabbittest.HasBadge(n, "guest:guest") {
			t.Errorf("a badge shows the credentials: %v", n.Badges())
		}
	}
	if got := rabbittest.Counter(st, "published"); got != 0 {
		t.Errorf("published %d with no broker", got)
	}
	mustBalance(t, st)
}

// The article's connection per publish costs more per event than one
// long-lived connection, and the events say how much.
func TestConnectionPerPublishCostsMore(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	median := func(connection string) float64 {
		rabbittest.MustSet(t, l, "order-service.connection", connection)
		from, published := len(l.sink.Events()), rabbittest.Counter(l.Stats(), "published")
		rabbittest.MustSet(t, l, "order-service.send-100", nil)
		rabbittest.WaitFor(t, l, 20*time.Second, "100 more published", func(st flow.Stats) bool {
			return rabbittest.Counter(st, "published") == published+100
		})
		var costs []float64
		for _, e := range l.sink.Events()[from:] {
			if e.Kind == flow.KindPublish && e.From == "order-service" {
				costs = append(costs, e.Detail.LatencyMS)
			}
		}
		slices.Sort(costs)
		return costs[len(costs)/2]
	}
	perPublish, longLived := median("per-publish"), median("long-lived")
	t.Logf("median cost before the publish: %.3f ms with a connection per publish, %.3f ms with a long-lived one", perPublish, longLived)
	if perPublish <= longLived {
		t.Errorf("a connection per publish cost %.3f ms, a long-lived one %.3f ms", perPublish, longLived)
	}
}

// A silent path (a black hole) breaks nothing a client can see at once: the
// consumers notice only when their 2 s heartbeat runs out, about 3 s later,
// and the state events say how long that took. After restore they are back.
func TestSilentPathIsNoticedByTheHeartbeat(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer up", rabbittest.AllUp(consumers...))
	rabbittest.MustSet(t, l, "broker.silence", nil)
	if err := rabbittest.Set(l, "broker.silence", nil); flow.KindOf(err) != flow.Invalid {
		t.Errorf("silencing a silent path: %v", err)
	}
	rabbittest.WaitFor(t, l, 10*time.Second, "every consumer to notice", func(st flow.Stats) bool {
		for _, c := range consumers {
			if st.Nodes[c].State == "up" {
				return false
			}
		}
		return flag(st.Nodes["exchange"], "path-silent")
	})
	for _, c := range consumers {
		var noticed float64
		for _, e := range l.sink.Events() {
			if e.Kind == flow.KindState && e.From == c && e.Detail.LatencyMS > 0 {
				noticed = e.Detail.LatencyMS
			}
		}
		t.Logf("%s noticed the silence after %.0f ms", c, noticed)
		if noticed < 2000 || noticed > 8000 {
			t.Errorf("%s noticed the silence after %.0f ms, want about 1.5 heartbeats (3 s)", c, noticed)
		}
	}
	rabbittest.MustSet(t, l, "broker.restore", nil)
	rabbittest.WaitFor(t, l, 15*time.Second, "every consumer back", rabbittest.AllUp(consumers...))
}
