package flow

import (
	"context"
	"runtime/debug"
	"sync"
)

// Services runs a scenario's sample services, each in a goroutine of its
// own. A panic in one stops them all through the context they share, as a
// shutdown does, and Wait returns it as the scenario's failure, which the
// server shows on the scenario's page while the rest of flowlab runs on. A
// goroutine a service starts itself is not covered: its panic still ends the
// process.
type Services struct {
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	failed error
}

// NewServices returns Services whose context ends with ctx or at the first
// panic.
func NewServices(ctx context.Context) *Services {
	ctx, stop := context.WithCancel(ctx)
	return &Services{ctx: ctx, stop: stop}
}

// Go runs the service called name until its context ends.
func (s *Services) Go(name string, run func(context.Context)) {
	s.wg.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				s.mu.Lock()
				if s.failed == nil {
					s.failed = Errorf(Internal, "%s panicked: %v\n%s", name, r, debug.Stack())
				}
				s.mu.Unlock()
				s.stop()
			}
		}()
		run(s.ctx)
	})
}

// Wait waits for every service to stop, and returns the first panic as an
// Internal error, or nil.
func (s *Services) Wait() error {
	s.wg.Wait()
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}
