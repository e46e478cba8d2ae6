package compare

import (
	"flowlab/flow"
)

// Knobs: one shared row (inventory, load) and each column's own.
func (s *Scenario) Knobs() []flow.Knob {
	s.mu.Lock()
	kind, ack := s.queueKind, s.ackMode
	s.mu.Unlock()
	return []flow.Knob{
		{Name: "inventory.up", Group: "inventory", Label: "Up", Type: flow.BoolKnob, Value: s.inv.up.Load(),
			Help: "Inventory in all three columns at once: HTTP's port refuses connections, the RabbitMQ and Kafka consumers stop."},
		{Name: "inventory.latency_ms", Group: "inventory", Label: "Slow inventory", Type: flow.IntKnob, Min: 0, Max: 5000, Step: 50, Unit: "ms",
			Value: int(s.inv.latencyMS.Load()), Help: "How long each reservation takes, in every column."},
		{Name: "load.rate", Group: "load", Label: "Offered load", Type: flow.IntKnob, Min: 0, Max: maxRate, Step: 1, Unit: "orders/s",
			Value: int(s.rate.Load()), Help: "Orders placed each second in each column, at the same moments."},
		{Name: "http.timeout_ms", Group: colHTTP, Label: "Timeout", Type: flow.IntKnob, Min: 50, Max: 10000, Step: 50, Unit: "ms", Off: "none",
			Value: int(s.http.timeoutMS.Load()), Help: "How long each HTTP call may wait; the article's requests.post sets none."},
		{Name: "http.retries", Group: colHTTP, Label: "Retries", Type: flow.IntKnob, Min: 0, Max: 5, Step: 1,
			Value: int(s.http.retries.Load()), Help: "Calls tried again after a failure, 100 ms apart; the article tries once."},
		{Name: "rabbitmq.queue", Group: colRabbit, Label: "Queues", Type: flow.ChoiceKnob, Value: kind,
			Choices: []flow.Choice{
				{Value: queueDurable, Label: "durable"},
				{Value: queueExclusive, Label: "exclusive (the article's)"},
			},
			Help: "A durable queue holds orders while its consumer is away; the article's exclusive queue goes with its consumer, and what is published meanwhile goes nowhere."},
		{Name: "rabbitmq.ack", Group: colRabbit, Label: "Ack", Type: flow.ChoiceKnob, Value: ack,
			Choices: []flow.Choice{
				{Value: ackAfterWork, Label: "after the work"},
				{Value: ackOnDelivery, Label: "on delivery, auto-ack (the article's)"},
			},
			Help: "Acked after the work, a message its consumer had not done is delivered again; auto-acked, the broker forgets it as it sends it, and a consumer that goes away loses what it had been sent."},
		{Name: "kafka.commit", Group: colKafka, Label: "Commit", Type: flow.ChoiceKnob, Value: s.kafkaCommit(),
			Choices: []flow.Choice{
				{Value: commitAfter, Label: "after the work"},
				{Value: commitFirst, Label: "on poll, before the work (auto-commit)"},
			},
			Help: "Committed after the work, a record a stopped consumer had not done is read again; committed on poll, as kafka-python's auto-commit does in effect, it is skipped for good."},
	}
}

// Presets: the article's settings and the resilient ones.
func (s *Scenario) Presets() []flow.Preset {
	return []flow.Preset{
		{Name: "article", Label: "As in the article",
			Help:   "No HTTP timeout or retry; RabbitMQ's exclusive auto-ack queues; Kafka's auto-commit.",
			Values: map[string]any{"http.timeout_ms": 0, "http.retries": 0, "rabbitmq.queue": queueExclusive, "rabbitmq.ack": ackOnDelivery, "kafka.commit": commitFirst}},
		{Name: "resilient", Label: "Resilient",
			Help:   "A 1 s HTTP timeout with 3 retries; durable queues acked after the work; Kafka commits after the work.",
			Values: map[string]any{"http.timeout_ms": 1000, "http.retries": 3, "rabbitmq.queue": queueDurable, "rabbitmq.ack": ackAfterWork, "kafka.commit": commitAfter}},
	}
}

// Set changes one knob to a value Knob.Parse checked.
func (s *Scenario) Set(knob string, value any) error {
	switch knob {
	case "inventory.up":
		up, err := flow.Typed[bool](knob, value)
		if err != nil {
			return err
		}
		return s.setInventory(up)
	case "inventory.latency_ms", "load.rate", "http.timeout_ms", "http.retries":
		v, err := flow.Typed[int](knob, value)
		if err != nil {
			return err
		}
		switch knob {
		case "inventory.latency_ms":
			s.inv.latencyMS.Store(int64(v))
		case "load.rate":
			s.rate.Store(int64(v))
			select {
			case s.wake <- struct{}{}:
			default:
			}
		case "http.timeout_ms":
			s.http.timeoutMS.Store(int64(v))
		case "http.retries":
			s.http.retries.Store(int64(v))
		}
	case "rabbitmq.queue":
		v, err := flow.Typed[string](knob, value)
		if err != nil {
			return err
		}
		if v != queueDurable && v != queueExclusive {
			return flow.Errorf(flow.Invalid, "rabbitmq.queue takes %q or %q", queueDurable, queueExclusive)
		}
		s.mu.Lock()
		s.queueKind = v
		ack := s.ackMode
		s.mu.Unlock()
		s.rabbit.setQueue(v == queueExclusive, ack == ackOnDelivery)
	case "rabbitmq.ack":
		v, err := flow.Typed[string](knob, value)
		if err != nil {
			return err
		}
		if v != ackAfterWork && v != ackOnDelivery {
			return flow.Errorf(flow.Invalid, "rabbitmq.ack takes %q or %q", ackAfterWork, ackOnDelivery)
		}
		s.mu.Lock()
		s.ackMode = v
		kind := s.queueKind
		s.mu.Unlock()
		s.rabbit.setQueue(kind == queueExclusive, v == ackOnDelivery)
	case "kafka.commit":
		v, err := flow.Typed[string](knob, value)
		if err != nil {
			return err
		}
		if v != commitAfter && v != commitFirst {
			return flow.Errorf(flow.Invalid, "kafka.commit takes %q or %q", commitAfter, commitFirst)
		}
		s.kafka.commitFirst.Store(v == commitFirst)
	default:
		return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), knob)
	}
	s.cfg.Emit.Emit(flow.Event{Kind: flow.KindState, Detail: flow.Detail{Knob: knob, Value: value}})
	return nil
}

func (s *Scenario) kafkaCommit() string {
	if s.kafka.commitFirst.Load() {
		return commitFirst
	}
	return commitAfter
}
