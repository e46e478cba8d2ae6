package main

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestMain deletes what the tests' labs left on the shared RabbitMQ: every
// lab's scenarios declare durable queues and exchanges named after the lab,
// which outlive a test by design.
func TestMain(m *testing.M) {
	code := m.Run()
	deleteLabTopology("." + labPrefix)
	os.Exit(code)
}

// deleteLabTopology deletes queues and exchanges whose names end in a lab id
// starting with marker. rabbitmqctl lists them, as AMQP cannot; without it,
// nothing is deleted.
func deleteLabTopology(marker string) {
	list := func(what string) []string {
		out, err := exec.Command("rabbitmqctl", "list_"+what, "-q", "--no-table-headers", "name").Output()
		if err != nil {
			return nil
		}
		var names []string
		for _, n := range strings.Fields(string(out)) {
			if i := strings.LastIndex(n, marker); i >= 0 && !strings.Contains(n[i+1:], ".") {
				names = append(names, n)
			}
		}
		return names
	}
	cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard) // the defaults MustStart's servers use
	if err != nil {
		return
	}
	conn, err := amqp.Dial(cfg.AMQPURL)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range list("queues") {
		ch.QueueDelete(q, false, false, false)
	}
	for _, x := range list("exchanges") {
		ch.ExchangeDelete(x, false, false)
	}
}
