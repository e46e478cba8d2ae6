package workqueue

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// Knobs lists order-service's knobs, the email service's (shared by every
// worker), each worker's, then the network path's.
func (s *Scenario) Knobs() []flow.Knob {
	s.producer.mu.Lock()
	rate := s.producer.rate
	s.producer.mu.Unlock()
	set := s.settings()
	ks := []flow.Knob{
		{Name: "order-service.rate", Group: nodeOrderService, Label: "Orders per second", Type: flow.IntKnob,
			Min: 1, Max: 200, Unit: "/s", Off: "paused", Value: rate},
		{Name: "order-service.send-100", Group: nodeOrderService, Label: "Send 100 orders", Type: flow.ActionKnob,
			Help: fmt.Sprintf("Queue 100 email jobs at once, beside the rate; at most %d may wait to be sent.", maxBacklog)},
		{Name: "emails.failure", Group: nodeEmails, Label: "Sending fails", Type: flow.IntKnob,
			Help: "Share of attempts whose email cannot be sent.", Min: 1, Max: 100, Unit: "%", Off: "never", Value: set.failure},
		{Name: "emails.processing", Group: nodeEmails, Label: "Time to send", Type: flow.IntKnob,
			Min: 1, Max: 5000, Unit: "ms", Off: "instant", Value: int(set.processing.Milliseconds())},
		{Name: "emails.max-attempts", Group: nodeEmails, Label: "Attempts before the DLQ", Type: flow.IntKnob,
			Help: "After a failed attempt a job waits 250 ms, then 500 ms, 1 s, … and comes back, until this many attempts failed.",
			Min:  1, Max: maxAttempts, Value: set.maxAttempts},
		{Name: "emails.prefetch", Group: nodeEmails, Label: "Prefetch per worker", Type: flow.IntKnob,
			Help: "Unacked jobs the broker may hand each worker at once.", Min: 1, Max: 100, Value: set.prefetch},
		// The one place the number of workers is bounded: adding and
		// removing one go through this knob's range.
		{Name: "emails.workers", Group: nodeEmails, Label: "Workers", Type: flow.IntKnob,
			Help: "Competing workers on the emails queue: each job goes to one of them.", Min: 1, Max: maxWorkers, Value: len(s.staff())},
		{Name: "emails.add-worker", Group: nodeEmails, Label: "Add a worker", Type: flow.ActionKnob,
			Help: "One more worker takes jobs from the same queue: watch them share the work."},
		{Name: "emails.remove-worker", Group: nodeEmails, Label: "Remove a worker", Type: flow.ActionKnob,
			Help: "The last worker stops cleanly; the jobs it held go back to the queue."},
	}
	// Every worker that may be added has its knobs from the start: the page
	// draws the knobs once, and a worker not hired refuses them.
	for _, w := range s.workers {
		ks = append(ks,
			flow.Knob{Name: w.name + ".stop", Group: w.name, Label: "Stop", Type: flow.ActionKnob},
			flow.Knob{Name: w.name + ".crash", Group: w.name, Label: "Crash", Type: flow.ActionKnob, Help: "Drop its connection mid-job, nothing acked."},
			flow.Knob{Name: w.name + ".crash-after-send", Group: w.name, Label: "Crash after sending", Type: flow.ActionKnob,
				Help: "Crash right after its next email goes out, before the ack: the job comes back and its email goes out again."},
			flow.Knob{Name: w.name + ".restart", Group: w.name, Label: "Restart", Type: flow.ActionKnob},
		)
	}
	return append(ks, s.broker.Knobs()...)
}

// maxBacklog bounds the jobs waiting to be sent by "Send 100 orders", so
// that a classroom's eager clicks cannot queue up work without end.
const maxBacklog = 1000

// Presets: a flaky mail server, and a healthy one. Each names every knob the
// other names, so that applying one after the other leaves what a fresh apply
// leaves. The flaky one shows its lesson within seconds: with half the sends
// failing and three attempts, one job in eight is dead-lettered, and at 10
// orders a second the first comes in about a second.
func (s *Scenario) Presets() []flow.Preset {
	return []flow.Preset{
		{Name: "flaky", Label: "Flaky mail server", Help: "Half the sends fail; three attempts before the DLQ, at 10 orders a second.",
			Values: map[string]any{"emails.failure": 50, "emails.max-attempts": 3, "order-service.rate": 10}},
		{Name: "healthy", Label: "Healthy mail server",
			Values: map[string]any{"emails.failure": 0, "emails.max-attempts": defaultWork.maxAttempts, "order-service.rate": defaultRate}},
	}
}

// Set changes one knob; a knob that does not apply now is refused and
// changes nothing.
func (s *Scenario) Set(knob string, value any) error {
	group, name, _ := strings.Cut(knob, ".")
	switch group {
	case nodeOrderService:
		return s.producer.setKnob(name, value)
	case nodeEmails:
		return s.setWork(name, value)
	case "broker":
		return s.broker.Set(name, value)
	}
	for i, w := range s.workers {
		if w.name != group {
			continue
		}
		if hired := len(s.staff()); i >= hired {
			return flow.Errorf(flow.Invalid, "%s is not one of the %d workers now: add a worker first", w.name, hired)
		}
		return w.setKnob(name)
	}
	return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), knob)
}

// setWork changes one of the email service's settings. The read, the change
// and the write happen under one hold of s.mu, so two browsers setting two
// knobs at once both keep their change.
func (s *Scenario) setWork(name string, value any) error {
	switch name {
	case "add-worker":
		return flow.SetKnob(s, "emails.workers", []byte(strconv.Itoa(len(s.staff())+1)))
	case "remove-worker":
		return flow.SetKnob(s, "emails.workers", []byte(strconv.Itoa(len(s.staff())-1)))
	}
	v, err := flow.Typed[int]("emails."+name, value)
	if err != nil {
		return err
	}
	s.mu.Lock()
	switch name {
	case "failure":
		s.work.failure = v
	case "processing":
		s.work.processing = time.Duration(v) * time.Millisecond
	case "max-attempts":
		s.work.maxAttempts = v
	case "prefetch":
		s.work.prefetch = v
	case "workers":
		s.hire(v)
	default:
		s.mu.Unlock()
		return flow.Errorf(flow.NotFound, "%s has no knob %q", s.Title(), "emails."+name)
	}
	s.mu.Unlock()
	if name == "prefetch" {
		// A new prefetch takes a new subscription: each worker starts afresh.
		for _, w := range s.staff() {
			rabbit.Signal(w.wake)
		}
	}
	return nil
}
