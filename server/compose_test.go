package main

import (
	"context"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// The compose file cannot be run here (no Docker engine), so it is loaded and
// validated with compose-spec's own loader, and the wiring is checked.
func TestComposeFileLoadsAndWiresTheBrokers(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithWorkingDirectory(".."), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	app, err := p.GetService("flowlab")
	if err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if v := app.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if env("AMQP_URL") != "amqp://guest:guest@rabbitmq:5672/" || env("KAFKA_BROKERS") != "kafka:9092" {
		t.Errorf("app is not pointed at the compose brokers: AMQP_URL=%q KAFKA_BROKERS=%q", env("AMQP_URL"), env("KAFKA_BROKERS"))
	}
	if _, err := parseConfig(nil, env, nil); err != nil {
		t.Errorf("the app's environment in compose is not a valid flowlab config: %v", err)
	}
	if a := app.Networks["default"]; a == nil || len(a.Aliases) == 0 || a.Aliases[0] != "product-service" {
		t.Errorf("product-service alias missing: the article calls http://product-service:5000")
	}
	ports := map[uint32]bool{}
	for _, pc := range app.Ports {
		ports[pc.Target] = true
	}
	if !ports[8080] || !ports[5000] {
		t.Errorf("app publishes %v, want 8080 (page) and 5000 (product-service)", app.Ports)
	}
	for _, dep := range []string{"rabbitmq", "kafka"} {
		if _, ok := app.DependsOn[dep]; !ok {
			t.Errorf("app does not wait for %s", dep)
		}
	}
	rmq, err := p.GetService("rabbitmq")
	if err != nil || rmq.Image != "rabbitmq:3-management" {
		t.Errorf("RabbitMQ service must use the management image: %v %q", err, rmq.Image)
	}
	k, err := p.GetService("kafka")
	if err != nil || k.Environment["KAFKA_PROCESS_ROLES"] == nil || *k.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Errorf("Kafka must be a single KRaft node: %v", err)
	}
}
