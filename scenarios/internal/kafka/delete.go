// Package kafka holds what the Kafka scenarios share about their broker.
package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Delete deletes consumer groups, then topics, on the Kafka at brokers,
// with a client of its own. Groups go first: a broker refuses to delete a
// group with members, and a group whose scenario has stopped is empty. A
// group or topic that is not there counts as deleted; every other failure
// is returned, each naming its group or topic.
func Delete(ctx context.Context, brokers, topics, groups []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DisableClientMetrics())
	if err != nil {
		return fmt.Errorf("Kafka brokers %v: %w", brokers, err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	var errs []error
	if len(groups) > 0 {
		gs, err := admin.DeleteGroups(ctx, groups...)
		errs = append(errs, err)
		for _, g := range gs {
			if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
				errs = append(errs, fmt.Errorf("delete group %s: %w", g.Group, g.Err))
			}
		}
	}
	if len(topics) > 0 {
		ts, err := admin.DeleteTopics(ctx, topics...)
		errs = append(errs, err)
		for _, t := range ts {
			if t.Err != nil && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", t.Topic, t.Err))
			}
		}
	}
	return errors.Join(errs...)
}
