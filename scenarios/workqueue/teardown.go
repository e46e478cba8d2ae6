package workqueue

import (
	"context"
	"fmt"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown deletes what the lab declared on RabbitMQ: the emails queue,
// every retry queue (all are declared, whatever max-attempts says), the DLQ
// and the dead-letter exchange.
func (s *Scenario) Teardown(ctx context.Context) error {
	queues := []string{s.queue, s.dlq}
	for a := 1; a < maxAttempts; a++ {
		queues = append(queues, s.retryQueue(a))
	}
	if err := rabbit.Delete(ctx, s.broker.URL, queues, []string{s.dlx}); err != nil {
		return fmt.Errorf("work-queue teardown: %w", err)
	}
	return nil
}
