package workqueue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
	"flowlab/scenarios/internal/rabbittest"
)

// With a healthy mail server the workers share the jobs and send them all.
func TestWorkersShareAndSendEveryJob(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 10*time.Second, "100 sent", func(st flow.Stats) bool { return rabbittest.Counter(st, "acked") == 100 })
	rabbittest.MustBalance(t, st)
	busy := 0
	for _, w := range workers {
		if l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindDeliver && e.To == w }) > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("only %d of 3 competing workers got jobs", busy)
	}
	if got := rabbittest.Counter(st, "retries"); got != 0 {
		t.Errorf("%d retries with a healthy mail server", got)
	}
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}

// When sending always fails, every job is tried max-attempts times, waiting
// 250 ms then 500 ms in the retry queues, and then dead-lettered; every
// attempt is a hop on its trace.
func TestFailedJobsRetryWithGrowingDelayThenDeadLetter(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "emails.failure", 100)
	rabbittest.MustSet(t, l, "emails.max-attempts", 3)
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	st := rabbittest.WaitFor(t, l, 15*time.Second, "100 dead-lettered and in the DLQ", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "dead-lettered") == 100 && factIs(st, "dlq", "ready", int64(100))
	})
	if got := rabbittest.Counter(st, "retries"); got != 200 {
		t.Errorf("%d retries, want 2 per job", got)
	}
	if got := rabbittest.Counter(st, "acked"); got != 0 {
		t.Errorf("%d sent while sending always fails", got)
	}
	rabbittest.MustBalance(t, st)

	var id string
	for _, e := range l.sink.Events() {
		if e.Kind == flow.KindPublish {
			id = e.MsgID
			break
		}
	}
	job, ok := l.Job(id)
	if !ok || job.State != "dead-lettered" || job.Attempt != 3 || job.Deliveries != 3 {
		t.Errorf("job %s: %+v, want dead-lettered after 3 attempts", id, job)
	}
	hops, _ := l.lab.Traces.Get(id)
	var kinds []string
	for _, h := range hops {
		if h.Kind == flow.KindState {
			continue
		}
		kinds = append(kinds, string(h.Kind))
		if h.Kind == flow.KindRoute && h.Detail.DelayMS < 240 {
			t.Errorf("attempt %d came back after %.0f ms, before its delay", h.Attempt, h.Detail.DelayMS)
		}
	}
	// The broker's confirm (the ack to order-service) may come at any point
	// after the publish, even after the first retry; the rest is in order.
	acks := slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k != "ack" })
	rest := slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k == "ack" })
	want := []string{"publish", "deliver", "retry", "route", "deliver", "retry", "route", "deliver", "dead-letter"}
	if len(acks) != 1 || !slices.Equal(rest, want) {
		t.Fatalf("trace of %s: %v, want one ack and %v", id, kinds, want)
	}
}

// A worker that crashes mid-job loses nothing: the jobs it held are
// redelivered, flagged and counted as duplicates, and all get sent.
func TestCrashedWorkerLosesNothing(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "emails.processing", 5000)
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(t, l, "worker-2.stop", nil)
	rabbittest.MustSet(t, l, "worker-3.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "two workers stopped", func(st flow.Stats) bool {
		return st.Nodes["worker-2"].State == "stopped" && st.Nodes["worker-3"].State == "stopped"
	})
	rabbittest.MustSet(t, l, "order-service.send-100", nil)
	rabbittest.WaitFor(t, l, 10*time.Second, "worker-1 holding 5", func(st flow.Stats) bool {
		return rabbittest.Counter(st, "published") == 100 && factIs(st, "worker-1", "unacked", int64(5))
	})
	rabbittest.MustSet(t, l, "worker-1.crash", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "worker-1 crashed", func(st flow.Stats) bool { return st.Nodes["worker-1"].State == "crashed" })

	rabbittest.MustSet(t, l, "emails.processing", 0)
	for _, w := range workers {
		rabbittest.MustSet(t, l, w+".restart", nil)
	}
	st := rabbittest.WaitFor(t, l, 10*time.Second, "all 100 sent", func(st flow.Stats) bool { return rabbittest.Counter(st, "acked") == 100 })
	if got := rabbittest.Counter(st, "redeliveries"); got != 5 {
		t.Errorf("%d duplicates, want the 5 worker-1 held", got)
	}
	if n := l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindDeliver && e.Detail.Redeliver }); n != 5 {
		t.Errorf("%d deliveries flagged redelivered, want 5", n)
	}
	rabbittest.MustBalance(t, st)
}

// An outside client's job, with no id and not even JSON, is shown as raw and
// external, gets an id, and never breaks a worker.
func TestOutsideJobIsShownRaw(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	conn, err := amqp.Dial(rabbittest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ch.PublishWithContext(ctx, "", l.lab.Name("emails"), false, false, amqp.Publishing{Body: []byte("\x01 not json")}); err != nil {
		t.Fatal(err)
	}
	rabbittest.WaitFor(t, l, 2*time.Second, "the outside job sent", func(flow.Stats) bool {
		return l.sink.Count(func(e flow.Event) bool { return e.Kind == flow.KindAck && e.Detail.External }) == 1
	})
	deliver := l.sink.Events()
	for _, e := range deliver {
		if e.Kind == flow.KindDeliver && (!e.Detail.External || !e.Detail.Raw || e.MsgID == "" || e.Detail.Payload != "\x01 not json") {
			t.Errorf("outside job delivered as %+v", e)
		}
	}
	st := rabbittest.WaitFor(t, l, time.Second, "workers still up", rabbittest.AllUp(workers...))
	if rabbittest.Counter(st, "published") != 0 || st.Ledger.Total.Value != 0 {
		t.Errorf("an outside job entered the ledger:\n%s", rabbittest.Describe(st))
	}
}

// Bad input is refused with the right kind of error and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.WaitFor(t, l, 10*time.Second, "every worker up", rabbittest.AllUp(workers...))
	rabbittest.MustSet(t, l, "worker-1.stop", nil)
	rabbittest.WaitFor(t, l, 5*time.Second, "worker-1 stopped", func(st flow.Stats) bool { return st.Nodes["worker-1"].State == "stopped" })
	before := l.Knobs()
	for _, c := range []struct {
		knob  string
		value any
		kind  flow.ErrorKind
	}{
		{"worker-6.stop", nil, flow.NotFound},
		{"worker-4.stop", nil, flow.Invalid}, // not added
		{"emails.colour", 1, flow.NotFound},
		{"order-service.rate", 201, flow.Invalid},
		{"emails.max-attempts", 0, flow.Invalid},
		{"emails.max-attempts", 11, flow.Invalid},
		{"emails.prefetch", 101, flow.Invalid},
		{"emails.failure", "often", flow.Invalid},
		{"worker-1.stop", nil, flow.Invalid},
		{"worker-1.crash", nil, flow.Invalid},
		{"broker.restore", nil, flow.Invalid},
	} {
		if err := rabbittest.Set(l, c.knob, c.value); flow.KindOf(err) != c.kind {
			t.Errorf("%s = %v: %v, want a %s error", c.knob, c.value, err, c.kind)
		}
	}
	after := l.Knobs()
	for i := range before {
		if before[i].Value != after[i].Value {
			t.Errorf("refused commands changed %s from %v to %v", before[i].Name, before[i].Value, after[i].Value)
		}
	}
}

// A cut path gives every service a real error; after restore they reconnect
// and the work goes on, nothing lost.
func TestCutPathWorkersReconnect(t *testing.T) {
	l := MustStart(t, rabbittest.URL())
	rabbittest.MustSet(t, l, "order-service.rate", 50)
	services := append([]string{"order-service"}, workers...)
	rabbittest.WaitFor(t, l, 10*time.Second, "jobs flowing", func(st flow.Stats) bool {
		return rabbittest.AllUp(services...)(st) && rabbittest.Counter(st, "acked") > 5
	})
	rabbittest.MustSet(t, l, "broker.cut", nil)
	cut := rabbittest.WaitFor(t, l, 5*time.Second, "every service unreachable", rabbittest.AllUnreachable(services...))
	if cut.Nodes["emails"].State != "up" {
		t.Errorf("the watcher lost the broker too: %+v", cut.Nodes["emails"])
	}
	before := rabbittest.Counter(cut, "acked")
	rabbittest.MustSet(t, l, "broker.restore", nil)
	st := rabbittest.WaitFor(t, l, 15*time.Second, "work going on", func(st flow.Stats) bool {
		return rabbittest.AllUp(services...)(st) && rabbittest.Counter(st, "acked") > before+5
	})
	rabbittest.MustBalance(t, st)
	rabbittest.EveryNodeKnown(t, l, l.sink.Events())
}
