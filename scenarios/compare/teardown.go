package compare

import (
	"context"
	"errors"
	"fmt"

	"flowlab/flow"
	"flowlab/scenarios/internal/kafka"
	"flowlab/scenarios/internal/rabbit"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown deletes what the lab made on the brokers: the durable queues and
// the exchange on RabbitMQ (exclusive queues went with their connections),
// the topic and both groups on Kafka.
func (s *Scenario) Teardown(ctx context.Context) error {
	var queues []string
	for _, c := range s.rabbit.consumers {
		queues = append(queues, c.queue)
	}
	rerr := rabbit.Delete(ctx, s.rabbit.broker.URL, queues, []string{s.rabbit.exchange})
	kerr := kafka.Delete(ctx, s.cfg.Brokers, []string{s.kafka.topic},
		[]string{s.kafka.consumers[0].group, s.kafka.consumers[1].group})
	if err := errors.Join(rerr, kerr); err != nil {
		return fmt.Errorf("compare teardown: %w", err)
	}
	return nil
}
