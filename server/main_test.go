package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain deletes what the tests' labs left on the shared RabbitMQ: every
// lab's scenarios declare durable queues and exchanges named after the lab,
// which outlive a test by design.
func TestMain(m *testing.M) {
	code := m.Run()
	deleteRabbitObjects(ofTestLabs)
	os.Exit(code)
}

// ofTestLabs says whether a queue or exchange name ends in the id of a lab
// this test binary made.
func ofTestLabs(name string) bool {
	i := strings.LastIndex(name, "."+labPrefix)
	return i >= 0 && !strings.Contains(name[i+1:], ".")
}
