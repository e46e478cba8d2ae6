package rabbit

import (
	"context"
	"fmt"
)

// Delete deletes queues, then exchanges, on the broker at url through the
// broker's own protocol, over a connection of its own (not the cuttable
// path: a reset must work while the learner has the path cut). RabbitMQ
// answers delete-ok for a name it does not hold, so deleting twice is fine.
// Queues are deleted whatever they hold: this is a reset, not a drain.
func Delete(ctx context.Context, url string, queues, exchanges []string) error {
	conn, err := Dial(ctx, url, "teardown")
	if err != nil {
		return err
	}
	// amqp091 takes no context: closing the connection when ctx ends
	// makes a pending delete return.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	// A refused delete closes the channel, so the first error ends it.
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	for _, x := range exchanges {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			return fmt.Errorf("delete exchange %s: %w", x, err)
		}
	}
	return nil
}
