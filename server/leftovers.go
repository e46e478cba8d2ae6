package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"flowlab/flow"
)

// A flowlab that is killed never tears its sandboxes down, and their durable
// queues and exchanges would stay on RabbitMQ for good. So every open
// sandbox is recorded in the progress file until its teardown has deleted
// all it made, and the next start deletes what the recorded ones left.

// leftoverRetry is how often the start's sweep tries again while a broker
// does not answer (a private RabbitMQ node takes seconds to boot).
const leftoverRetry = 5 * time.Second

// sandboxOpened records sandbox id as open; a file that cannot be written is
// logged: the sandbox works, only a kill would leave its objects.
func (a *App) sandboxOpened(id string) {
	if err := a.learners.SandboxOpened(a.cfg.Instance, id); err != nil {
		a.log.Warn("record an open sandbox", "lab", id, "err", err)
	}
}

// sandboxGone forgets sandbox id: its teardown left nothing.
func (a *App) sandboxGone(id string) {
	if err := a.learners.SandboxGone(a.cfg.Instance, id); err != nil {
		a.log.Warn("forget a torn-down sandbox", "lab", id, "err", err)
	}
}

// sweepLeftovers deletes what the sandboxes recorded open by an earlier run
// of this instance left on the brokers, trying again until each is done or
// ctx ends. It runs beside everything else: nothing waits for it.
func (a *App) sweepLeftovers(ctx context.Context) {
	ids, err := a.learners.Sandboxes(a.cfg.Instance)
	if err != nil {
		a.log.Error("read the sandboxes an earlier run left", "err", err)
		return
	}
	if len(ids) == 0 {
		return
	}
	a.log.Info("deleting what sandboxes of an earlier run left on the brokers", "sandboxes", len(ids))
	for tries := 1; ; tries++ {
		var left []string
		for _, id := range ids {
			if err := a.deleteLeftover(ctx, id); err != nil {
				left = append(left, id)
				if tries == 1 { // then quietly: the broker may be booting
					a.log.Warn("an earlier run's sandbox still has broker objects; trying again", "lab", id, "err", err)
				}
			}
		}
		if ids = left; len(ids) == 0 {
			a.log.Info("an earlier run's sandboxes left nothing on the brokers")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(leftoverRetry):
		}
	}
}

// deleteLeftover deletes the broker objects of an earlier run's sandbox id
// (its whole id, the instance's prefix included),
// by their names, as its teardown would have, without running anything.
func (a *App) deleteLeftover(ctx context.Context, id string) error {
	if _, ok := a.lab(id); ok { // random ids never come back, but be sure
		return nil
	}
	local := id // the id without "<instance>-", as openLab takes it
	if a.cfg.Instance != "" {
		local = strings.TrimPrefix(id, a.cfg.Instance+"-")
	}
	l, err := a.openLab(local, false)
	if err != nil {
		// Not a lab id this flowlab makes: nothing of it can exist.
		a.log.Warn("forgetting a recorded sandbox that is no lab", "lab", id, "err", err)
		a.sandboxGone(id)
		return nil
	}
	defer l.close()
	var errs []error
	for _, s := range l.scenarios {
		if t, ok := s.sup.current().(flow.Tearer); ok {
			tctx, cancel := context.WithTimeout(ctx, resetTimeout)
			errs = append(errs, t.Teardown(tctx))
			cancel()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.sandboxGone(id)
	return nil
}
