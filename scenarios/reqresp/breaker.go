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

// state is the breaker's state word and its badges, for the view.
func (b *breaker) state() flow.NodeState {
	if b == nil {
		return flow.NodeState{State: "off"}
	}
	st := b.cb.State() // may move open to half-open, which calls breakerMoved
	ns := flow.NodeState{State: st.String()}
	switch st {
	case gobreaker.StateClosed:
		ns.Badges = []string{fmt.Sprintf("failures %d/%d", b.cb.Counts().ConsecutiveFailures, b.failures)}
	case gobreaker.StateOpen:
		// OPEN reads to a newcomer as "traffic flows": say what it does.
		ns.Badges = []string{fmt.Sprintf("calls blocked for %g s", float64(b.openMS)/1000)}
	case gobreaker.StateHalfOpen:
		ns.Badges = []string{"one trial call"}
	}
	return ns
}

func (s *Scenario) emitState(node, state string) {
	s.events.Emit(flow.Event{Kind: flow.KindState, Detail: flow.Detail{Node: node, State: state}})
}
