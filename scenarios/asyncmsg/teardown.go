package asyncmsg

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown deletes what the lab made on Kafka: the consumer group inventory
// (its committed offsets) and the topic orders, with every record. The
// group goes first: it is empty once Run has ended, and a broker refuses to
// delete a group with members. A topic or group that is not there counts as
// deleted.
func (s *Scenario) Teardown(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.DisableClientMetrics())
	if err != nil {
		return flow.Errorf(flow.Invalid, "Kafka brokers %v: %v", s.cfg.Brokers, err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	if _, err := admin.DeleteGroup(ctx, s.group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("asynchronous messaging teardown: delete group %s: %w", s.group, err)
	}
	if _, err := admin.DeleteTopic(ctx, s.topic); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("asynchronous messaging teardown: delete topic %s: %w", s.topic, err)
	}
	return nil
}
