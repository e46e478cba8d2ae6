package main

import (
	"context"
	"flag"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"flowlab/flow"
)

var sandboxCycles = flag.Int("cycles", 20, "TestSandboxCyclesLeaveNothing: how many create → open → teardown cycles (docs/BENCHMARKS.md runs 1000)")

// Sandboxes made, opened and torn down over and over leave no goroutine
// behind and nothing on either broker. Each cycle makes a sandbox as a
// browser does, opens one pattern (the four in turn) over its websocket, sets
// its rate, waits for a message to go through its broker, closes the page and
// tears the sandbox down by the path its time to live takes (App.teardown).
// Four cycles run at once. The first four, one per pattern, also check that
// the brokers did hold their objects, so that "nothing left" means something.
func TestSandboxCyclesLeaveNothing(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl is needed to list what RabbitMQ holds")
	}
	// The default lab stops a second after start, as nobody watches it:
	// what runs then is the server alone, the baseline for goleak.
	a, _ := startServer(t, func(a *App, _ string) { a.cfg.IdleStop = time.Second })
	url := "http://" + a.web.Addr().String()
	waitFor(t, "the default lab stopped for want of a browser", func() bool { return a.runs.Load() == 0 })
	time.Sleep(time.Second) // its connections close
	baseline := goleak.IgnoreCurrent()

	var (
		mu  sync.Mutex
		ids []string
	)
	cycle := func(i int, before func(id string)) {
		pat := loadPatterns[i%len(loadPatterns)]
		c, err := openSandbox(url, pat.name)
		if err != nil {
			t.Errorf("cycle %d (%s): %v", i, pat.name, err)
			return
		}
		mu.Lock()
		ids = append(ids, c.lab)
		mu.Unlock()
		if err := c.set(pat.rate, loadRate); err != nil {
			t.Errorf("cycle %d (%s): set %s: %v", i, pat.name, pat.rate, err)
		}
		if err := c.throughBroker(); err != nil {
			t.Errorf("cycle %d (%s): no message went through: %v", i, pat.name, err)
		}
		c.close()
		if before != nil {
			before(c.lab)
		}
		l, ok := a.lab(c.lab)
		if !ok {
			t.Errorf("cycle %d: lab %s is not open", i, c.lab)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		a.teardown(ctx, l, "a test cycle")
	}

	// One sandbox per pattern, torn down only once the brokers have been
	// asked what they hold for each.
	var wg sync.WaitGroup
	opened := make(chan string, len(loadPatterns))
	listed := make(chan struct{})
	for i := range loadPatterns {
		wg.Go(func() { cycle(i, func(id string) { opened <- id; <-listed }) })
	}
	var first []string
	for range loadPatterns {
		select {
		case id := <-opened:
			first = append(first, id)
		case <-time.After(30 * time.Second):
			close(listed)
			t.Fatal("the first four sandboxes did not open within 30 s")
		}
	}
	held := brokerObjects(t, a, first)
	close(listed)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	with := 0
	for _, id := range first {
		if len(held[id]) > 0 {
			with++
		}
	}
	if with != 3 { // request-response uses no broker
		t.Fatalf("while open, the brokers held %v for sandboxes %v: want objects for the three broker patterns", held, first)
	}

	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				cycle(i, nil)
			}
		})
	}
	for i := len(loadPatterns); i < *sandboxCycles && !t.Failed(); i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := a.allLabs(); len(got) != 1 {
		t.Fatalf("%d labs open after every sandbox was torn down, want the default lab only", len(got))
	}

	if left := brokerObjects(t, a, ids); len(left) > 0 {
		t.Errorf("after %d cycles the brokers still hold %v", len(ids), left)
	}
	http.DefaultClient.CloseIdleConnections()
	noRedirect.CloseIdleConnections()
	// The embedded Kafka runs in this process, and it reads each request of
	// a connection (the broker watch's, every 2 s) on a new goroutine. A
	// Kafka client left open would still show by its own goroutines.
	var kafkaSide []goleak.Option
	for _, f := range []string{"read", "read.func1", "write"} {
		kafkaSide = append(kafkaSide, goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn)."+f))
	}
	if err := goleak.Find(append(kafkaSide, baseline)...); err != nil {
		t.Errorf("after %d cycles: %v", len(ids), err)
	}
	t.Logf("%d create → open → teardown cycles", len(ids))
}

// brokerObjects lists, by sandbox id, what RabbitMQ (its own listing of
// queues and exchanges) and the embedded Kafka (topics and groups) hold whose
// name has the id in it.
func brokerObjects(t *testing.T, a *App, ids []string) map[string][]string {
	t.Helper()
	var names []string
	for _, kind := range []string{"queue", "exchange"} {
		out, err := exec.Command("rabbitmqctl", "list_"+kind+"s", "-q", "--no-table-headers", "name").Output()
		if err != nil {
			t.Fatalf("rabbitmqctl list_%ss: %v", kind, err)
		}
		for name := range strings.FieldsSeq(string(out)) {
			names = append(names, kind+" "+name)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.brokers.kafkaAddrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatalf("Kafka topics: %v", err)
	}
	for _, topic := range topics.Names() {
		names = append(names, "topic "+topic)
	}
	groups, err := admin.ListGroups(ctx)
	if err != nil {
		t.Fatalf("Kafka groups: %v", err)
	}
	for _, g := range groups.Groups() {
		names = append(names, "group "+g)
	}
	held := map[string][]string{}
	for _, n := range names {
		for _, id := range ids {
			if strings.Contains(n, id) {
				held[id] = append(held[id], n)
			}
		}
	}
	return held
}

// throughBroker reads the websocket until a message has gone all the way
// (a delivery, or product-service's response) within 20 s.
func (c *sandboxClient) throughBroker() error {
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		var m labMsg
		if err := c.conn.ReadJSON(&m); err != nil {
			return err
		}
		if slices.ContainsFunc(m.Events, func(e flow.Event) bool { return e.Kind == flow.KindDeliver || e.Kind == flow.KindResponse }) {
			return nil
		}
	}
}
