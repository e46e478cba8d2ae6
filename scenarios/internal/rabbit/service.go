package rabbit

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Status is a service's state as its node shows it (starting, connecting, up,
// reconnecting, unreachable, or one of the scenario's own such as paused or
// stopped) with what the client library said last.
type Status struct {
	broker *Broker
	node   string

	mu    sync.Mutex // guards the fields below
	state string
	err   string
}

// NewStatus starts the status of the service drawn as node.
func (b *Broker) NewStatus(node, state string) *Status {
	return &Status{broker: b, node: node, state: state}
}

// Set moves the service to state; err says what failed, if anything. A change
// of state is emitted as a state event. A service that is unreachable stays
// so while it tries to connect again: no flicker.
func (s *Status) Set(state string, err error) {
	s.mu.Lock()
	was := s.state
	if state == "connecting" && was == "unreachable" {
		s.mu.Unlock()
		return
	}
	s.state, s.err = state, ""
	if err != nil {
		s.err = ErrorText(err)
	}
	s.mu.Unlock()
	if state != was {
		s.broker.changed(s.node, was, state, err)
	}
}

// Get returns the state and the text of the last error, "" when the last
// change came without one.
func (s *Status) Get() (state, err string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.err
}

// Retry runs session again and again until ctx ends. A session returns when
// its connection fails (an error) or when it is done for now (nil); up says
// that it got as far as doing its work, so the backoff starts afresh. After a
// failure the status says unreachable (the service could not connect at all)
// or reconnecting (its connection failed), and Retry waits before the next
// session: up to 200 ms at first, doubling to 5 s while no session gets up,
// with jitter so that services do not redial in lock step. A signal on wake
// cuts the wait short.
func Retry(ctx context.Context, status *Status, wake <-chan struct{}, session func() (up bool, err error)) {
	var b backoff
	for ctx.Err() == nil {
		up, err := session()
		if up {
			b.reset()
		}
		if err != nil && ctx.Err() == nil {
			status.Set(troubleState(err), err)
			b.wait(ctx, wake)
		}
	}
}

// troubleState is the state word a service shows after err: unreachable when
// it could not connect, reconnecting when its connection failed.
func troubleState(err error) string {
	if errors.Is(err, errUnreachable) {
		return "unreachable"
	}
	return "reconnecting"
}

// backoff is the wait between reconnect attempts: it doubles from 200 ms to
// 5 s, and each wait is between half of that and all of it.
type backoff struct{ next time.Duration }

func (b *backoff) wait(ctx context.Context, wake <-chan struct{}) {
	if b.next == 0 {
		b.next = 200 * time.Millisecond
	}
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, 5*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

func (b *backoff) reset() { b.next = 0 }
