package workqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbit"
)

// worker is one of the competing email workers. It acks a job only after its
// email went out, or after the job is safely in a retry queue (publisher
// confirm first, then ack), so a crash at any point loses nothing: at worst a
// job runs twice.
type worker struct {
	s      *Scenario
	name   string
	status *rabbit.Status
	wake   chan struct{} // the learner changed something

	mu         sync.Mutex // guards the fields below
	want       string     // running, stopped, crashed or removed: what the learner asked for
	restarts   int
	prefetch   int   // as the running session uses it
	held       int   // delivered and not yet settled
	done       int64 // jobs it sent and acked
	crashAfter bool  // crash right after the next email goes out, before its ack
	left       bool  // removed, and its last session is over
}

const (
	wantRunning = "running"
	wantStopped = "stopped"
	wantCrashed = "crashed"
	wantRemoved = "removed" // not one of the learner's workers now
)

// errCrashedAfterSend ends a session whose worker crashed between sending an
// email and acking its job.
var errCrashedAfterSend = errors.New("crashed after sending, before the ack")

// Headers a job carries between attempts.
const (
	headerAttempt   = "x-attempt"         // the attempt this delivery is; absent means 1
	headerFirstSent = "x-first-published" // unix milliseconds of the first publish (AMQP timestamps have whole seconds)
	headerFailedAt  = "x-failed-at"       // unix milliseconds of the last failure
)

func newWorker(s *Scenario, name string) *worker {
	return &worker{s: s, name: name, status: s.broker.NewStatus(name, "starting"), wake: make(chan struct{}, 1), want: wantRunning}
}

func (w *worker) run(ctx context.Context) {
	rabbit.Retry(ctx, w.status, w.wake, func() (bool, error) {
		w.mu.Lock()
		want, restarts := w.want, w.restarts
		w.left = want == wantRemoved // its session, if it had one, is over
		w.mu.Unlock()
		if want != wantRunning {
			if want != wantRemoved { // a removed worker has no node to show a state on
				w.status.Set(want, nil)
			}
			select {
			case <-ctx.Done():
			case <-w.wake:
			}
			return false, nil
		}
		return w.session(ctx, restarts)
	})
}

// job is a delivery in the worker's hands.
type job struct {
	amqp.Delivery
	id       string
	attempt  int
	external bool
}

// session consumes with one channel and publishes retries with another, until
// the connection fails (an error), or ctx ends or the learner changes
// something (nil).
func (w *worker) session(ctx context.Context, restarts int) (up bool, err error) {
	w.status.Set("connecting", nil)
	conn, err := w.s.broker.Dial(ctx, w.name)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	prefetch := w.s.settings().prefetch
	consume, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := w.s.declareTopology(consume); err != nil {
		return false, err
	}
	if err := consume.Qos(prefetch, 0, false); err != nil {
		return false, err
	}
	deliveries, err := consume.Consume(w.s.queue, w.name, false, false, false, false, nil)
	if err != nil {
		return false, err
	}
	retries, err := conn.Channel()
	if err != nil {
		return false, err
	}
	if err := retries.Confirm(false); err != nil {
		return false, err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	w.mu.Lock()
	w.prefetch = prefetch
	w.mu.Unlock()
	w.status.Set("up", nil)

	var backlog []job
	var busy *job
	var done <-chan time.Time
	defer func() { w.release(busy, backlog) }()
	for {
		if busy == nil && len(backlog) > 0 {
			next := backlog[0]
			busy, backlog = &next, backlog[1:]
			done = time.After(w.s.settings().processing)
		}
		w.mu.Lock()
		w.held = len(backlog)
		if busy != nil {
			w.held++
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-closed:
			return true, rabbit.ConnectionLost(err)
		case d, ok := <-deliveries:
			if !ok {
				return true, fmt.Errorf("%s's channel closed", w.name)
			}
			backlog = append(backlog, w.received(d))
		case <-done:
			err := w.finish(ctx, retries, *busy)
			if errors.Is(err, errCrashedAfterSend) {
				conn.Drop() // the email is out, its job unacked
				return true, nil
			}
			if err != nil {
				return true, err
			}
			busy, done = nil, nil
		case <-w.wake:
			w.mu.Lock()
			want, again := w.want, w.restarts != restarts
			w.mu.Unlock()
			switch {
			case want == wantCrashed:
				conn.Drop() // mid-processing: nothing acked
				return true, nil
			case want == wantStopped || want == wantRemoved || again || w.s.settings().prefetch != prefetch:
				consume.Cancel(w.name, false) // on failure the connection is gone, which ends deliveries too
				for d := range deliveries {
					backlog = append(backlog, w.received(d))
				}
				return true, nil
			}
		}
	}
}

// received records a delivery and shows it. A job back from a retry queue
// first shows the hop from there, with how long it waited.
func (w *worker) received(d amqp.Delivery) job {
	j := job{Delivery: d, id: d.MessageId, attempt: headerInt(d.Headers, headerAttempt, 1)}
	if j.attempt > 1 && !d.Redelivered {
		waited := time.Since(time.UnixMilli(int64(headerInt(d.Headers, headerFailedAt, 0))))
		w.s.emit.Emit(flow.Event{Kind: flow.KindRoute, From: nodeRetry, To: nodeEmails, MsgID: j.id, Attempt: j.attempt,
			Detail: flow.Detail{DelayMS: millis(waited), Queue: w.s.retryQueue(j.attempt - 1), Outcome: "delay over"}})
	}
	known, again := false, false
	if d.MessageId != "" {
		known, again = w.s.ledger.deliver(d.MessageId, j.attempt, d.Redelivered)
	}
	detail := flow.Detail{Queue: w.s.queue, Redeliver: d.Redelivered || again}
	if !known {
		j.external = true
		if j.id == "" {
			j.id = w.s.externalID()
		}
		detail.External, detail.Payload = true, string(d.Body)
		detail.Raw = !json.Valid(d.Body)
	}
	w.s.emit.Emit(flow.Event{Kind: flow.KindDeliver, From: nodeEmails, To: w.name, MsgID: j.id, Attempt: j.attempt, Detail: detail})
	return j
}

// finish ends one attempt: the email went out (ack), or it failed and the job
// either waits in the retry queue for this attempt or, after the last allowed
// attempt, is dead-lettered. An error means the connection is failing, or
// errCrashedAfterSend that the worker crashes with the email out and its job
// unacked.
func (w *worker) finish(ctx context.Context, retries *amqp.Channel, j job) error {
	set := w.s.settings()
	if rand.N(100) >= set.failure {
		duplicate := w.s.ledger.sent(j.id)
		outcome := "email sent"
		if duplicate {
			outcome = "email sent again: it went out before, and was never acked"
		}
		if w.takeCrashAfter() {
			w.s.emit.Emit(flow.Event{Kind: flow.KindState, From: w.name, To: w.name, MsgID: j.id, Attempt: j.attempt,
				Detail: flow.Detail{Outcome: outcome + "; the worker crashed before its ack", Duplicate: duplicate, External: j.external}})
			return errCrashedAfterSend
		}
		if err := j.Ack(false); err != nil {
			return err
		}
		if w.s.ledger.settle(j.id, acked) {
			w.mu.Lock()
			w.done++
			w.mu.Unlock()
		}
		w.s.emit.Emit(flow.Event{Kind: flow.KindAck, From: w.name, To: nodeEmails, MsgID: j.id, Attempt: j.attempt,
			Detail: flow.Detail{Outcome: outcome, Duplicate: duplicate, External: j.external}})
		w.tookSince(j)
		return nil
	}
	if j.attempt >= set.maxAttempts {
		if err := j.Nack(false, false); err != nil {
			return err
		}
		w.s.ledger.settle(j.id, deadLettered)
		w.s.emit.Emit(flow.Event{Kind: flow.KindDeadLetter, From: w.name, To: nodeDLQ, MsgID: j.id, Attempt: j.attempt,
			Detail: flow.Detail{Outcome: fmt.Sprintf("failed attempt %d of %d: dead-lettered", j.attempt, set.maxAttempts), External: j.external}})
		w.tookSince(j)
		return nil
	}
	delay := retryDelay(j.attempt)
	headers := amqp.Table{}
	for k, v := range j.Headers {
		headers[k] = v
	}
	headers[headerAttempt] = int32(j.attempt + 1)
	headers[headerFailedAt] = time.Now().UnixMilli()
	confirm, err := retries.PublishWithDeferredConfirmWithContext(ctx, "", w.s.retryQueue(j.attempt), false, false, amqp.Publishing{
		ContentType:  j.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    j.id, // an outside job keeps the id it got at first sight
		AppId:        j.AppId,
		Timestamp:    j.Timestamp,
		Headers:      headers,
		Body:         j.Body,
	})
	if err != nil {
		return err
	}
	// Only a job the broker holds in the retry queue may be acked here; if
	// the confirm never comes, the original is redelivered instead.
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		return fmt.Errorf("retry of %s not confirmed", j.id)
	}
	if err := j.Ack(false); err != nil {
		return err
	}
	w.s.ledger.retry(j.id, j.attempt)
	w.s.emit.Emit(flow.Event{Kind: flow.KindRetry, From: w.name, To: nodeRetry, MsgID: j.id, Attempt: j.attempt,
		Detail: flow.Detail{DelayMS: millis(delay), Queue: w.s.retryQueue(j.attempt), External: j.external,
			Outcome: fmt.Sprintf("failed attempt %d of %d: retry in %s", j.attempt, set.maxAttempts, delay)}})
	return nil
}

// tookSince feeds the chart how long a settled job took since its first
// publish, retries included. Outside jobs carry no such time.
func (w *worker) tookSince(j job) {
	if ms := headerInt(j.Headers, headerFirstSent, 0); ms > 0 {
		w.s.settledAfter(time.Since(time.UnixMilli(int64(ms))))
	}
}

// release puts what the worker held back in flight when its session ends:
// unacked, the broker delivers it again.
func (w *worker) release(busy *job, backlog []job) {
	if busy != nil {
		backlog = append(backlog, *busy)
	}
	for _, j := range backlog {
		w.s.ledger.settle(j.id, queued)
	}
	w.mu.Lock()
	w.held = 0
	w.mu.Unlock()
}

// headerInt reads a whole-number header, whatever integer type the client
// that set it used.
func headerInt(h amqp.Table, key string, missing int) int {
	switch v := h[key].(type) {
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	}
	return missing
}

// setWant makes the worker do what the learner now wants, afresh.
func (w *worker) setWant(want string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want, w.crashAfter = want, false
	w.left = w.left && want == wantRemoved
	w.restarts++
	rabbit.Signal(w.wake)
}

// gone says whether the worker was removed and has finished leaving: until
// then its node stays, and shows the jobs it hands back.
func (w *worker) gone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.left
}

// takeCrashAfter says whether the learner asked the worker to crash after
// this email, and takes the request.
func (w *worker) takeCrashAfter() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.crashAfter {
		return false
	}
	w.crashAfter, w.want = false, wantCrashed
	return true
}

func (w *worker) setKnob(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch name {
	case "stop", "crash":
		if w.want != wantRunning {
			return flow.Errorf(flow.Invalid, "%s is already %s: restart it first", w.name, w.want)
		}
		w.want = map[string]string{"stop": wantStopped, "crash": wantCrashed}[name]
		w.crashAfter = false
	case "crash-after-send":
		if w.want != wantRunning {
			return flow.Errorf(flow.Invalid, "%s is already %s: restart it first", w.name, w.want)
		}
		w.crashAfter = true
		return nil // it crashes when its next email is out
	case "restart":
		w.want = wantRunning
		w.crashAfter = false
		w.restarts++
	default:
		return flow.Errorf(flow.NotFound, "%s has no knob %q", w.name, name)
	}
	rabbit.Signal(w.wake)
	return nil
}

// state is a worker's node: what it holds unacknowledged under its prefetch
// while it runs, and the broker it cannot reach.
func (w *worker) state() flow.NodeState {
	st, errText := w.status.Get()
	prefetch := w.s.settings().prefetch // what it takes when it runs again
	w.mu.Lock()
	defer w.mu.Unlock()
	up := st == "up"
	if up {
		prefetch = w.prefetch
	}
	return flow.NodeState{State: st, Facts: []flow.Fact{
		flow.Flag("up", up, ""), // the state word says why not
		flow.Count("unacked", int64(w.held), "unacked %d").When(up),
		flow.Count("prefetch", int64(prefetch), "prefetch %d").When(up),
		flow.Count("done", w.done, "%d done"),
		flow.Word("broker", w.s.broker.Name, "broker %s").When(errText != ""),
		flow.Word("error", errText, "%s"),
	}}
}
