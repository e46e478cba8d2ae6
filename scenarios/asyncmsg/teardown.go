package asyncmsg

import (
	"context"
	"fmt"

	"flowlab/flow"
	"flowlab/scenarios/internal/kafka"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown deletes what the lab made on Kafka: the consumer group inventory
// (its committed offsets) and the topic orders, with every record. The
// group goes first: it is empty once Run has ended, and a broker refuses to
// delete a group with members. A topic or group that is not there counts as
// deleted.
func (s *Scenario) Teardown(ctx context.Context) error {
	if err := kafka.Delete(ctx, s.cfg.Brokers, []string{s.topic}, []string{s.group}); err != nil {
		return fmt.Errorf("asynchronous messaging teardown: %w", err)
	}
	return nil
}
