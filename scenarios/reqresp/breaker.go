package reqresp

import (
	"errors"
	"fmt"

	"github.com/sony/gobreaker/v2"

	"flowlab/flow"
)

// breaker is order-service's circuit breaker on the edge to product-service.
// It wraps each attempt; a change to any breaker knob replaces it with a
// fresh, closed one.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[try]
	failures int // consecutive failures that open it
	openMS   int // how long it stays open
}

// newBreaker builds a closed breaker from the knobs.
func (s *Scenario) newBreaker(c *settings) *breaker {
	b := &breaker{failures: c.breakerFailures, openMS: c.breakerOpenMS}
	b.cb = gobreaker.NewCircuitBreaker[try](gobreaker.Settings{
		Name:        breakerNode,
		MaxRequests: 1, // half-open lets one trial call through
		Timeout:     millis(c.breakerOpenMS),
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(b.failures) },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCancelled) },
		// Called with gobreaker's lock held: breakerMoved must not call back into cb.
		OnStateChange: func(_ string, _, to gobreaker.State) { s.breakerMoved(b, to.String()) },
	})
	return b
}

// setBreaker puts a fresh breaker in place, or none, and says so.
func (s *Scenario) setBreaker(c *settings) {
	s.breakerMu.Lock()
	defer s.breakerMu.Unlock()
	if !c.breaker {
		s.breaker.Store(nil)
		s.emitState(breakerNode, "off")
		return
	}
	s.breaker.Store(s.newBreaker(c))
	s.emitState(breakerNode, gobreaker.StateClosed.String())
}

// breakerMoved reports a state change of b, unless b has been replaced: a call
// still finishing on an old breaker must not paint the new one's state.
func (s *Scenario) breakerMoved(b *breaker, state string) {
	s.breakerMu.Lock()
	defer s.breakerMu.Unlock()
	if s.breaker.Load() == b {
		s.emitState(breakerNode, state)
	}
}

// rejection says whether the breaker refused an attempt, and why.
func rejection(err error) (string, bool) {
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return "circuit breaker open", true
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return "circuit breaker half-open: one trial call at a time", true
	}
	return "", false
}

// state is the breaker's state word and its facts, for the view; c holds the
// knobs of a breaker that is off. Only the badge of the current state is
// drawn.
func (b *breaker) state(c *settings) flow.NodeState {
	st, failures, trip, openMS := "off", uint32(0), c.breakerFailures, c.breakerOpenMS
	if b != nil {
		// State may move open to half-open, which calls breakerMoved.
		st, failures, trip, openMS = b.cb.State().String(), b.cb.Counts().ConsecutiveFailures, b.failures, b.openMS
	}
	state := flow.Word("state", st, "")
	if st == gobreaker.StateHalfOpen.String() {
		state.Badge = "one trial call"
	}
	open := flow.Count("open-ms", int64(openMS), "")
	if st == gobreaker.StateOpen.String() {
		// "open" alone reads as "traffic flows": say what it does to calls.
		open.Badge = fmt.Sprintf("calls blocked for %g s", float64(openMS)/1000)
	}
	return flow.NodeState{State: st, Facts: []flow.Fact{
		state,
		// The threshold is part of the format: "failures 2/5".
		flow.Count("failures", int64(failures), fmt.Sprintf("failures %%d/%d", trip)).When(st == gobreaker.StateClosed.String()),
		flow.Count("failures-to-open", int64(trip), ""),
		open,
	}}
}

func (s *Scenario) emitState(node, state string) {
	s.events.Emit(flow.Event{Kind: flow.KindState, Detail: flow.Detail{Node: node, State: state}})
}
