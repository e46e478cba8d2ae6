package eventdriven

import (
	"context"
	"fmt"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown deletes what the lab declared on RabbitMQ: each consumer's
// durable queue, the DLQ, the exchange and the dead-letter exchange. The
// exclusive temporary queues went with their connections when Run ended.
func (s *Scenario) Teardown(ctx context.Context) error {
	queues := []string{s.dlq}
	for _, c := range s.consumers {
		queues = append(queues, c.durableQueue)
	}
	if err := rabbit.Delete(ctx, s.broker.URL, queues, []string{s.exchange, s.dlx}); err != nil {
		return fmt.Errorf("event-driven teardown: %w", err)
	}
	return nil
}
