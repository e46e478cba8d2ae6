package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A private node starts for real beside the system one, takes AMQP on its
// own port, and leaves nothing behind when it stops: no listener, no Erlang
// VM. It never touches the node on 5672.
func TestPrivateRabbitNodeAnswersAndStopsWithoutATrace(t *testing.T) {
	server := findRabbitServer()
	if server == "" {
		t.Skip("rabbitmq-server is not installed")
	}
	n, err := newRabbitNode(server, t.TempDir(), fmt.Sprintf("flowlab-test-%d", os.Getpid()), "amqp://guest@localhost:5672/", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n.port == 5672 {
		t.Fatal("the private node took the system node's port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	if p, status := n.State(); p != nodeStarting || !strings.Contains(status, "starting a private RabbitMQ node…") {
		t.Fatalf("state at start = %v %q", p, status)
	}
	deadline := time.Now().Add(100 * time.Second) // ~9 s idle, ~25 s measured on a busy machine
	for {
		p, status := n.State()
		if p == nodeUp {
			break
		}
		if p == nodeDown || time.Now().After(deadline) {
			t.Fatalf("node never came up: %s", status)
		}
		time.Sleep(200 * time.Millisecond)
	}

	conn, err := amqp.Dial(n.URL)
	if err != nil {
		t.Fatalf("dial the private node: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := ch.Get(q.Name, true); err != nil || (ok && string(m.Body) != "hello") {
		t.Fatalf("get = %q %v %v", m.Body, ok, err)
	}
	conn.Close()
	beam := n.vmPID()
	if beam == 0 || !running(beam) {
		t.Fatalf("node.pid names no running Erlang VM (pid %d)", beam)
	}

	cancel()
	stopping := time.Now()
	select {
	case <-stopped:
		t.Logf("stopped in %s", time.Since(stopping).Round(time.Millisecond))
	case <-time.After(stopGrace + 5*time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)), time.Second); err == nil {
		c.Close()
		t.Fatalf("something still listens on the node's port %d", n.port)
	}
	if running(beam) {
		t.Fatalf("the node's Erlang VM (pid %d) outlived it", beam)
	}
	if p, status := n.State(); p != nodeDown || !strings.Contains(status, "stopped with flowlab") {
		t.Fatalf("state after stop = %v %q", p, status)
	}
}

// Where nothing answers at the default URL and rabbitmq-server is not
// installed, the page names the one command that installs it; a URL the user
// chose, or a default one that answers, is kept and no node is planned.
func TestRabbitPlanWithoutRabbitMQServerSaysHowToInstallIt(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	answering := "amqp://guest:guest@" + l.Addr().String() + "/"
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := "amqp://guest:guest@" + closed.Addr().String() + "/"
	closed.Close()
	noDir := func() (string, error) { t.Error("no node is planned, so no data folder is needed"); return "", nil }
	log := slog.New(slog.DiscardHandler)

	plan := planRabbit(nothing, true, "", noDir, log)
	if plan.Node != nil || plan.URL != nothing {
		t.Fatalf("plan = %+v, want the default URL kept and no node", plan)
	}
	w := newBrokerWatch([]string{"127.0.0.1:1"}, false, plan)
	defer w.Close()
	s := w.probeRabbit()
	if s.OK || s.Starting || !strings.Contains(s.Status, "rabbitmq-server is not installed") || !strings.Contains(s.Status, "`sudo apt-get install rabbitmq-server`") {
		t.Fatalf("status = %+v, want it to name the install command", s)
	}

	for _, c := range []struct {
		url       string
		isDefault bool
	}{{nothing, false}, {answering, true}} {
		if plan := planRabbit(c.url, c.isDefault, "/usr/lib/rabbitmq/bin/rabbitmq-server", noDir, log); plan.Node != nil || plan.URL != c.url {
			t.Errorf("%s (default %v): plan = %+v, want the URL kept and no node", c.url, c.isDefault, plan)
		}
	}
}
