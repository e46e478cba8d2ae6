package compare

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"flowlab/flow"
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...))
	if err != nil {
		return errors.Join(rerr, err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	var kerrs []error
	groups, err := admin.DeleteGroups(ctx, s.kafka.consumers[0].group, s.kafka.consumers[1].group)
	if err != nil {
		kerrs = append(kerrs, err)
	}
	for _, g := range groups {
		if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
			kerrs = append(kerrs, fmt.Errorf("group %s: %w", g.Group, g.Err))
		}
	}
	topics, err := admin.DeleteTopics(ctx, s.kafka.topic)
	if err != nil {
		kerrs = append(kerrs, err)
	}
	for _, t := range topics {
		if t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			kerrs = append(kerrs, fmt.Errorf("topic %s: %w", t.Topic, t.Err))
		}
	}
	if err := errors.Join(append([]error{rerr}, kerrs...)...); err != nil {
		return fmt.Errorf("compare teardown: %w", err)
	}
	return nil
}
