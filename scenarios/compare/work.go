package compare

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// inventoryState is what the shared controls say about inventory: whether it
// runs, and how long each reservation takes. Every column's inventory reads
// the same one, so one press acts on all three patterns at once.
type inventoryState struct {
	up        atomic.Bool
	latencyMS atomic.Int64
}

// reserveStock is inventory-service's work, the same code behind every
// transport: it takes the configured time and reserves the order's stock in
// the column's books. It reports a duplicate when the stock had been
// reserved for that order already.
func reserveStock(ctx context.Context, inv *inventoryState, b *books, n int64) (dup bool) {
	if ms := inv.latencyMS.Load(); ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			// Stopping: the work is done anyway, as a process would
			// finish the statement it is in.
			t.Stop()
		}
	}
	return b.did(n, markReserved)
}

// sendConfirmation is email-service's work, the same behind every
// transport.
func sendConfirmation(b *books, n int64) (dup bool) { return b.did(n, markEmailed) }

// orderBody is an order's message, "<run>:<n>": the run id keeps what an
// earlier run left on a broker apart from this run's orders.
func orderBody(run string, n int64) string { return run + ":" + strconv.FormatInt(n, 10) }

// parseOrder reads an order's message back; ok is false for another run's
// or a malformed one.
func parseOrder(run, body string) (n int64, ok bool) {
	r, num, found := strings.Cut(body, ":")
	if !found || r != run {
		return 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	return n, err == nil && n >= 0
}

// orderID is how an order is named in events and as a Kafka key.
func orderID(col string, n int64) string { return fmt.Sprintf("%s-%d", col, n) }
