package eventdriven

import (
	"fmt"
	"strings"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// Knob choices, in the learner's words.
const (
	connPerPublish = "per-publish"
	connLongLived  = "long-lived"
	ackAuto        = "auto"
	ackManual      = "manual"
	queueExclusive = "exclusive"
	queueDurable   = "durable"
	poisonRequeue  = "requeue"
	poisonDLQ      = "dead-letter"
)

// maxBacklog bounds the orders waiting to be sent by "Send 100 orders", so
// that a classroom's eager clicks cannot queue up work without end.
const maxBacklog = 1000

// Knobs lists order-service's knobs, then each consumer's, then the DLQ's and
// the network path's. The order matters: presets apply in it, so a consumer's
// ack mode comes before its prefetch, and consumers before poison handling.
func (s *Scenario) Knobs() []flow.Knob {
	p := s.publisher.settings()
	connection := connLongLived
	if p.perPublish {
		connection = connPerPublish
	}
	ks := []flow.Knob{
		{Name: "order-service.rate", Group: nodeOrderService, Label: "Orders per second", Type: flow.IntKnob,
			Min: 1, Max: 500, Unit: "/s", Off: "paused", Value: p.rate},
		{Name: "order-service.send-100", Group: nodeOrderService, Label: "Send 100 orders", Type: flow.ActionKnob,
			Help: fmt.Sprintf("Publish 100 order_placed events at once, beside the rate; at most %d may wait to be sent.", maxBacklog)},
		{Name: "order-service.connection", Group: nodeOrderService, Label: "Connection", Type: flow.ChoiceKnob,
			Help:    "The article opens a new connection for every event; watch the publish cost.",
			Choices: []flow.Choice{{Value: connPerPublish, Label: "new one per publish (article)"}, {Value: connLongLived, Label: "one long-lived"}},
			Value:   connection},
		{Name: "order-service.confirms", Group: nodeOrderService, Label: "Publisher confirms", Type: flow.BoolKnob,
			Help: "Wait for the broker to confirm each event before the next.", Value: p.confirms},
		{Name: "order-service.mandatory", Group: nodeOrderService, Label: "Mandatory", Type: flow.BoolKnob,
			Help: "Ask the broker to return events no queue took, instead of dropping them silently.", Value: p.mandatory},
		{Name: "order-service.poison", Group: nodeOrderService, Label: "Poison events", Type: flow.IntKnob,
			Help: "Share of events sent malformed.", Min: 1, Max: 100, Unit: "%", Off: "none", Value: p.poison},
	}
	for _, c := range s.consumers {
		ks = append(ks, c.knobs()...)
	}
	handling := poisonRequeue
	if s.deadLetteringPoison() {
		handling = poisonDLQ
	}
	ks = append(ks, flow.Knob{Name: "dlq.poison-handling", Group: nodeDLQ, Label: "Poison handling", Type: flow.ChoiceKnob,
		Help:    "What a consumer with manual ack does with an event it cannot process.",
		Choices: []flow.Choice{{Value: poisonRequeue, Label: "reject with requeue"}, {Value: poisonDLQ, Label: "reject to the dead-letter exchange"}},
		Value:   handling})
	return append(ks, s.broker.Knobs()...)
}

func (c *consumer) knobs() []flow.Knob {
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	ack, kind := ackAuto, queueExclusive
	if set.manual {
		ack = ackManual
	}
	if set.durable {
		kind = queueDurable
	}
	return []flow.Knob{
		{Name: c.name + ".stop", Group: c.name, Label: "Stop", Type: flow.ActionKnob, Help: "Shut the consumer down cleanly."},
		{Name: c.name + ".crash", Group: c.name, Label: "Crash", Type: flow.ActionKnob, Help: "Drop its connection mid-processing, nothing acked."},
		{Name: c.name + ".crash-after-processing", Group: c.name, Label: "Crash after processing", Type: flow.ActionKnob,
			Help: "With manual ack: crash right after processing the next event, before its ack. The event comes back and is processed again."},
		{Name: c.name + ".restart", Group: c.name, Label: "Restart", Type: flow.ActionKnob},
		{Name: c.name + ".processing", Group: c.name, Label: "Processing time", Type: flow.IntKnob,
			Min: 1, Max: 5000, Unit: "ms", Off: "instant", Value: int(set.processing.Milliseconds())},
		{Name: c.name + ".ack", Group: c.name, Label: "Ack mode", Type: flow.ChoiceKnob,
			Choices: []flow.Choice{{Value: ackAuto, Label: "auto-ack (article)"}, {Value: ackManual, Label: "manual, after processing"}},
			Value:   ack},
		{Name: c.name + ".prefetch", Group: c.name, Label: "Prefetch", Type: flow.IntKnob,
			Help: "Unacked messages the broker may hand it at once; it applies while the ack mode is manual.", Min: 1, Max: 1000, Value: set.prefetch},
		{Name: c.name + ".queue", Group: c.name, Label: "Queue", Type: flow.ChoiceKnob,
			Choices: []flow.Choice{{Value: queueExclusive, Label: "exclusive temporary (article)"}, {Value: queueDurable, Label: "durable named"}},
			Value:   kind},
	}
}

// Presets are the article's setup and the reliable one.
func (s *Scenario) Presets() []flow.Preset {
	// Each preset names every knob another preset names, so that applying
	// one after the other leaves what a fresh apply leaves.
	article := map[string]any{
		"order-service.connection": connPerPublish,
		"order-service.confirms":   false,
		"order-service.mandatory":  false,
		"dlq.poison-handling":      poisonRequeue,
	}
	reliable := map[string]any{
		"order-service.connection": connLongLived,
		"order-service.confirms":   true,
		"order-service.mandatory":  true,
		"dlq.poison-handling":      poisonDLQ,
	}
	for _, name := range consumerNames {
		article[name+".ack"] = ackAuto
		article[name+".prefetch"] = articleConsumer.prefetch
		article[name+".queue"] = queueExclusive
		reliable[name+".ack"] = ackManual
		reliable[name+".prefetch"] = 10
		reliable[name+".queue"] = queueDurable
	}
	return []flow.Preset{
		{Name: "article", Label: "As in the article", Values: article,
			Help: "A new connection per publish, no confirms; each consumer an exclusive temporary queue with auto-ack."},
		{Name: "reliable", Label: "Reliable", Values: reliable,
			Help: "One connection, publisher confirms and mandatory; durable queues, ack after processing, poison to the DLQ."},
	}
}

// Set changes one knob. A knob that does not apply now (prefetch with
// auto-ack, stopping a stopped consumer, …) is refused and changes nothing.
func (s *Scenario) Set(knob string, value any) error {
	group, name, _ := strings.Cut(knob, ".")
	switch group {
	case nodeOrderService:
		return s.publisher.setKnob(name, value)
	case nodeDLQ:
		return s.setPoisonHandling(knob, value)
	case "broker":
		return s.broker.Set(name, value)
	}
	for _, c := range s.consumers {
		if c.name == group {
			return c.setKnob(name, value)
		}
	}
	return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), knob)
}

func (p *publisher) setKnob(name string, value any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.set
	switch name {
	case "rate":
		v, err := flow.Typed[int](name, value)
		if err != nil {
			return err
		}
		set.rate = v
	case "connection":
		v, err := flow.Typed[string](name, value)
		if err != nil {
			return err
		}
		set.perPublish = v == connPerPublish
	case "confirms", "mandatory":
		v, err := flow.Typed[bool](name, value)
		if err != nil {
			return err
		}
		if name == "confirms" {
			set.confirms = v
		} else {
			set.mandatory = v
		}
	case "send-100":
		if p.burst+100 > maxBacklog {
			return flow.Errorf(flow.Invalid, "%d orders are still waiting to be sent, and at most %d may wait: let them go out first", p.burst, maxBacklog)
		}
		p.burst += 100
		rabbit.Signal(p.wake)
		return nil
	case "poison":
		v, err := flow.Typed[int](name, value)
		if err != nil {
			return err
		}
		set.poison = v
	default:
		return flow.Errorf(flow.NotFound, "order-service has no knob %q", name)
	}
	p.set = set
	rabbit.Signal(p.wake)
	return nil
}

func (c *consumer) setKnob(name string, value any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.set
	switch name {
	case "stop", "crash":
		if c.want != wantRunning {
			return flow.Errorf(flow.Invalid, "%s is already %s: restart it first", c.name, c.want)
		}
		c.want = map[string]string{"stop": wantStopped, "crash": wantCrashed}[name]
		c.crashAfter = false
		rabbit.Signal(c.wake)
		return nil
	case "crash-after-processing":
		if c.want != wantRunning {
			return flow.Errorf(flow.Invalid, "%s is already %s: restart it first", c.name, c.want)
		}
		if !c.set.manual {
			return flow.Errorf(flow.Invalid, "%s auto-acks: the broker forgot each event at delivery, so there is no ack to crash before", c.name)
		}
		c.crashAfter = true // it crashes once its next event is processed
		return nil
	case "restart":
		c.want, c.crashAfter = wantRunning, false
		c.restarts++
		rabbit.Signal(c.wake)
		return nil
	case "processing":
		v, err := flow.Typed[int](name, value)
		if err != nil {
			return err
		}
		set.processing = time.Duration(v) * time.Millisecond
	case "prefetch":
		v, err := flow.Typed[int](name, value)
		if err != nil {
			return err
		}
		// Kept under auto-ack too, for when the ack mode turns manual: a
		// preset must be able to set it whatever the ack mode was.
		set.prefetch = v
	case "ack":
		v, err := flow.Typed[string](name, value)
		if err != nil {
			return err
		}
		set.manual = v == ackManual
	case "queue":
		v, err := flow.Typed[string](name, value)
		if err != nil {
			return err
		}
		set.durable = v == queueDurable
	default:
		return flow.Errorf(flow.NotFound, "%s has no knob %q", c.name, name)
	}
	// A change of ack mode, prefetch or queue kind takes a new subscription:
	// the running session notices it and starts afresh, as a redeployed
	// consumer would. Under auto-ack there is no ack to crash before.
	c.set = set
	c.crashAfter = c.crashAfter && set.manual
	rabbit.Signal(c.wake)
	return nil
}

func (s *Scenario) setPoisonHandling(knob string, value any) error {
	if knob != "dlq.poison-handling" {
		return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), knob)
	}
	v, err := flow.Typed[string](knob, value)
	if err != nil {
		return err
	}
	manual := false
	for _, c := range s.consumers {
		c.mu.Lock()
		manual = manual || c.set.manual
		c.mu.Unlock()
	}
	// Requeue, the default, is always accepted: presets set it back after
	// the consumers went to auto-ack.
	if !manual && v == poisonDLQ {
		return flow.Errorf(flow.Invalid, "poison handling applies only to consumers with manual ack: with auto-ack the broker forgets a message at delivery, so there is nothing to reject")
	}
	s.mu.Lock()
	s.deadLetterPoison = v == poisonDLQ
	s.mu.Unlock()
	return nil
}
