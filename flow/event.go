// Package flow holds what every part of flowlab shares: the hop event that
// scenarios emit and browsers draw, the scenario contract with its knobs, the
// lab a scenario runs in, and the error kinds.
package flow

import (
	"time"
)

// Kind names what happened at one hop of a message.
type Kind string

// The hop kinds. Scenarios use the ones their broker has; the view gives each a
// distinct mark.
const (
	KindPublish    Kind = "publish"
	KindRoute      Kind = "route"
	KindDeliver    Kind = "deliver"
	KindAck        Kind = "ack"
	KindNack       Kind = "nack"
	KindRequeue    Kind = "requeue"
	KindDeadLetter Kind = "dead-letter"
	KindDrop       Kind = "drop"
	KindReturn     Kind = "return"
	KindRequest    Kind = "request"
	KindResponse   Kind = "response"
	KindTimeout    Kind = "timeout"
	KindError      Kind = "error"  // a transport failure: refused, reset
	KindReject     Kind = "reject" // refused by the caller itself (open breaker)
	KindRetry      Kind = "retry"
	KindResult     Kind = "result" // what the caller's code finally got
	KindCommit     Kind = "commit"
	KindRebalance  Kind = "rebalance"
	KindState      Kind = "state" // a node or knob changed
)

// Event is one hop of one message, or a change of state.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"t"`
	Lab      string    `json:"lab"`
	Scenario string    `json:"scenario"`
	Kind     Kind      `json:"kind"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	MsgID    string    `json:"msg,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Detail   Detail    `json:"detail,omitzero"`
}

// Detail is the small typed part of an event; each pattern fills what it has.
type Detail struct {
	Status    int     `json:"status,omitempty"`    // HTTP status
	LatencyMS float64 `json:"latencyMs,omitempty"` // time this hop took
	DelayMS   float64 `json:"delayMs,omitempty"`   // wait before a retry
	Outcome   string  `json:"outcome,omitempty"`   // ok, not-found, failed, none …
	Error     string  `json:"error,omitempty"`     // what the client library said
	Node      string  `json:"node,omitempty"`      // for state events: which node
	State     string  `json:"state,omitempty"`     // for state events: its new state
	Knob      string  `json:"knob,omitempty"`      // for state events: which knob
	Value     any     `json:"value,omitempty"`     // for state events: its new value
	Queue     string  `json:"queue,omitempty"`     // RabbitMQ queue
	Partition int32   `json:"partition,omitempty"` // Kafka partition
	Offset    int64   `json:"offset,omitempty"`    // Kafka offset
	Key       string  `json:"key,omitempty"`       // Kafka record key
	Payload   string  `json:"payload,omitempty"`   // message body, shortened
	Raw       bool    `json:"raw,omitempty"`       // payload is not JSON: shown as bytes
	External  bool    `json:"external,omitempty"`  // from a client outside flowlab
	Redeliver bool    `json:"redeliver,omitempty"` // the broker delivered it before
	Duplicate bool    `json:"duplicate,omitempty"` // processed before
}

// Sink takes events. Emit must never block on a browser.
type Sink interface {
	Emit(Event)
}
