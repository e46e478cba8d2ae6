package compare

import (
	"flowlab/flow"
)

// The canvas is three columns of 375, each drawn top-down: order-service,
// its broker, then inventory and email side by side. It is as wide as a
// stage beside an 18rem panel on a 1280-wide screen holds at the scale
// that draws its 21-unit texts 15.5 px high, and as short as three rows
// of boxes of three badges allow, so that the scorecard and swimlanes fit
// under it on a 1280×720 projector. HTTP's stands further in, its edges'
// labels to their left.
var colX = [3]float64{210, 585, 960}

const (
	viewW     = 1150
	viewH     = 430
	rowOrder  = 90
	rowBroker = 230
	rowWork   = 368
	pairDX    = 96
	// The narrowest the boxes of the bottom row are drawn, two to a
	// column: inventory's badges run longer than email's, and each grows
	// to fit its own with a gap left between them.
	inventoryW = 172
	emailW     = 150
)

// View draws the three columns. No node has a note: under a broker it
// would lie in the path of the marks to inventory and email.
func (s *Scenario) View() flow.View {
	hx, rx, kx := colX[0], colX[1], colX[2]
	v := flow.View{Width: viewW, Height: viewH, Nodes: []flow.Node{
		// HTTP's order-service stands a little lower: with no broker under
		// it, it has room for a third badge, its callers waiting.
		{ID: colHTTP, Label: "order-service", Kind: "service", X: hx, Y: rowOrder + 8},
		{ID: "http-inventory", Label: "inventory", Kind: "service", X: hx - pairDX, Y: rowWork, Width: inventoryW},
		{ID: "http-email", Label: "email", Kind: "service", X: hx + pairDX, Y: rowWork, Width: emailW},

		// The brokers' own names (lab.Name) are too long for a column;
		// the article's names stand for them.
		{ID: colRabbit, Label: "order-service", Kind: "service", X: rx, Y: rowOrder},
		{ID: "rabbitmq-exchange", Label: "order_placed", Kind: "exchange", X: rx, Y: rowBroker},
		{ID: "rabbitmq-inventory", Label: "inventory", Kind: "consumer", X: rx - pairDX, Y: rowWork, Width: inventoryW},
		{ID: "rabbitmq-email", Label: "email", Kind: "consumer", X: rx + pairDX, Y: rowWork, Width: emailW},

		{ID: colKafka, Label: "order-service", Kind: "service", X: kx, Y: rowOrder},
		{ID: "kafka-topic", Label: "orders", Kind: "topic", X: kx, Y: rowBroker},
		{ID: "kafka-inventory", Label: "inventory", Kind: "consumer", X: kx - pairDX, Y: rowWork, Width: inventoryW},
		{ID: "kafka-email", Label: "email", Kind: "consumer", X: kx + pairDX, Y: rowWork, Width: emailW},
	}}
	v.Edges = []flow.Edge{
		{From: colHTTP, To: "http-inventory", Label: "1. reserve"},
		{From: colHTTP, To: "http-email", Label: "2. confirm"},
		{From: colRabbit, To: "rabbitmq-exchange", Label: "publish"},
		{From: "rabbitmq-exchange", To: "rabbitmq-inventory"},
		{From: "rabbitmq-exchange", To: "rabbitmq-email"},
		{From: colKafka, To: "kafka-topic", Label: "produce"},
		{From: "kafka-topic", To: "kafka-inventory"},
		{From: "kafka-topic", To: "kafka-email"},
	}
	return v
}

// Stats: the scorecard on each column's order-service, each service's own
// state, the counters and one ledger over all three columns.
func (s *Scenario) Stats() flow.Stats {
	var totals [3]tally
	for i, b := range s.books {
		totals[i] = b.tally()
	}
	s.mu.Lock()
	catching, catchUp, point, kind, ack := s.catching, s.catchUpMS, s.point, s.queueKind, s.ackMode
	s.mu.Unlock()

	st := flow.Stats{Nodes: map[string]flow.NodeState{}, Series: point}
	var ledger [5]int64 // calling, failed, fulfilled, waiting, lost
	for i, col := range columns {
		t := totals[i]
		st.Nodes[col] = scorecard(t, s.backlog(i, t), catching[i], catchUp[i])
		if col == colHTTP {
			// Calls under way are HTTP's normal, not a backlog: its
			// callers wait, or fail, and nothing is held for later.
			ns := st.Nodes[col]
			if ns.State == "backlog" {
				ns.State = "ok"
			}
			for j, f := range ns.Facts {
				if f.Name == "backlog" {
					ns.Facts[j] = flow.Count("backlog", t.calling(), "callers waiting %d").When(t.calling() > 0)
				}
			}
			st.Nodes[col] = ns
		}
		st.Counters = append(st.Counters,
			flow.Counter{Name: col + ".placed", Label: col + ": orders placed", Value: t.placed},
			flow.Counter{Name: col + ".accepted", Label: col + ": accepted by order-service", Value: t.accepted},
			flow.Counter{Name: col + ".failed", Label: col + ": failed at the caller", Value: t.failed},
			flow.Counter{Name: col + ".fulfilled", Label: col + ": stock reserved and email sent", Value: t.fulfilled},
			flow.Counter{Name: col + ".lost", Label: col + ": accepted and never to be fulfilled", Value: t.lost},
			flow.Counter{Name: col + ".duplicates", Label: col + ": stock reserved or email sent again", Value: t.duplicates()},
		)
		for j, v := range []int64{t.calling(), t.failed, t.fulfilled, t.waiting(), t.lost} {
			ledger[j] += v
		}
	}
	var placed int64
	for _, t := range totals {
		placed += t.placed
	}
	st.Ledger = flow.Ledger{
		Total: flow.Counter{Name: "placed", Label: "orders placed, all columns", Value: placed},
		Parts: []flow.Counter{
			{Name: "calling", Label: "caller still waiting", Value: ledger[0]},
			{Name: "failed", Label: "failed at the caller", Value: ledger[1]},
			{Name: "fulfilled", Label: "fulfilled", Value: ledger[2]},
			{Name: "waiting", Label: "accepted, waiting for inventory or email", Value: ledger[3]},
			{Name: "lost", Label: "accepted and lost", Value: ledger[4]},
		},
	}
	var dups int64
	for _, t := range totals {
		dups += t.duplicates()
	}
	st.Ledger.Duplicates = &flow.Counter{Name: "duplicates", Label: "stock reserved or email sent again", Value: dups}

	up, latency := s.inv.up.Load(), s.inv.latencyMS.Load()
	invState := func(running string) string {
		if !up {
			return "down"
		}
		if latency > 0 {
			return "slow"
		}
		return running
	}
	// HTTP.
	st.Nodes["http-inventory"] = flow.NodeState{State: invState("up"), Facts: serviceFacts(up, latency, totals[0].reserved, totals[0].dupReserve)}
	st.Nodes["http-email"] = flow.NodeState{State: "up", Facts: []flow.Fact{
		flow.Count("sent", totals[0].emailed, "sent %d"), flow.Count("duplicates", totals[0].dupEmail, "duplicates %d").When(totals[0].dupEmail > 0)}}
	// RabbitMQ.
	wstate, werr := s.rabbit.watcher.State()
	st.Nodes["rabbitmq-exchange"] = flow.NodeState{State: wstate, Facts: append([]flow.Fact{
		flow.Word("queue-kind", kind, "fanout, %s queues"), flow.Word("ack", ack, "ack %s")}, s.rabbit.broker.ReachFacts(werr)...)}
	for j, c := range s.rabbit.consumers {
		state, _ := c.status.Get()
		facts := []flow.Fact{
			flow.Flag("queue-exists", c.exists.Load(), ""),
			flow.Count("ready", c.ready.Load(), "queued %d").When(c.exists.Load()),
		}
		if j == 0 {
			st.Nodes[c.node] = flow.NodeState{State: invState(state), Facts: append(serviceFacts(up, latency, totals[1].reserved, totals[1].dupReserve), facts...)}
		} else {
			st.Nodes[c.node] = flow.NodeState{State: state, Facts: append([]flow.Fact{
				flow.Count("sent", totals[1].emailed, "sent %d"), flow.Count("duplicates", totals[1].dupEmail, "duplicates %d").When(totals[1].dupEmail > 0)}, facts...)}
		}
	}
	// Kafka.
	s.kafka.mu.Lock()
	kstate, kerr := s.kafka.state, s.kafka.readErr
	s.kafka.mu.Unlock()
	st.Nodes["kafka-topic"] = flow.NodeState{State: kstate, Facts: []flow.Fact{
		flow.Count("partitions", kafkaPartitions, "%d partitions, by order id"), flow.Word("commit", s.kafkaCommit(), "commits %s"), flow.Word("error", kerr, "%s")}}
	for j, c := range s.kafka.consumers {
		state, _ := c.state.Load().(string)
		group := []flow.Fact{flow.Count("lag", c.lag.Load(), "lag %d"), flow.Count("in-hand", c.inHand.Load(), "working on %d").When(c.inHand.Load() > 1)}
		if j == 0 {
			st.Nodes[c.node] = flow.NodeState{State: invState(state), Facts: append(serviceFacts(up, latency, totals[2].reserved, totals[2].dupReserve), group...)}
		} else {
			st.Nodes[c.node] = flow.NodeState{State: state, Facts: append([]flow.Fact{
				flow.Count("sent", totals[2].emailed, "sent %d"), flow.Count("duplicates", totals[2].dupEmail, "duplicates %d").When(totals[2].dupEmail > 0)}, group...)}
		}
	}
	return st
}

// scorecard is a column's row of the scorecard, on its order-service.
func scorecard(t tally, backlog int64, catching bool, catchUpMS int64) flow.NodeState {
	state := "ok"
	switch {
	case t.failedPerS > 0:
		state = "failing"
	case backlog > 0:
		state = "backlog"
	}
	return flow.NodeState{State: state, Facts: []flow.Fact{
		// The scorecard under the diagram draws these: the node itself
		// shows what its callers got and what has gone wrong.
		flow.Count("placed", t.placed, ""),
		flow.Count("accepted", t.accepted, "accepted %d"),
		flow.Count("failed", t.failed, "failed %d").When(t.failedPerS > 0),
		flow.Measure("p99-ms", t.p99MS, ""),
		flow.Count("fulfilled", t.fulfilled, ""),
		flow.Count("backlog", backlog, "backlog %d").When(backlog > 0),
		flow.Count("lost", t.lost, "lost %d").When(t.lost > 0),
		flow.Count("duplicates", t.duplicates(), ""),
		flow.Flag("catching-up", catching, ""),
		flow.Count("catch-up-ms", catchUpMS, ""),
		flow.Count("accepted-per-s", t.acceptedPerS, ""),
		flow.Count("failed-per-s", t.failedPerS, ""),
		flow.Count("fulfilled-per-s", t.fulfilledPerS, ""),
	}}
}

// serviceFacts are an inventory's facts, the same in every column.
func serviceFacts(up bool, latencyMS, reserved, dups int64) []flow.Fact {
	return []flow.Fact{
		flow.Flag("up", up, ""),
		flow.Count("latency-ms", latencyMS, ""), // SLOW says it; the knob, how slow
		flow.Count("reserved", reserved, "reserved %d"),
		flow.Count("duplicates", dups, "duplicates %d").When(dups > 0),
	}
}
