package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigFlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{"FLOWLAB_ADDR": ":9000", "PRODUCT_ADDR": ":6000", "KAFKA_BROKERS": "a:1,b:2"}
	c, err := parseConfig([]string{"-addr", ":9100"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9100" || c.ProductAddr != ":6000" || len(c.KafkaBrokers) != 2 || c.AMQPURL != "amqp://guest:guest@localhost:5672/" {
		t.Fatalf("config = %+v", c)
	}
}

func TestBadConfigIsRefusedNamingTheSetting(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-addr", "8080"}, nil, "-addr / FLOWLAB_ADDR"},
		{[]string{"-product-addr", ":99999"}, nil, "-product-addr / PRODUCT_ADDR"},
		{nil, map[string]string{"KAFKA_BROKERS": "localhost"}, "-kafka-brokers / KAFKA_BROKERS"},
		{nil, map[string]string{"AMQP_URL": "http://x"}, "-amqp-url / AMQP_URL"},
		{[]string{"-kafka-retention", "10"}, nil, "-kafka-retention / KAFKA_RETENTION"},
		{nil, map[string]string{"KAFKA_RETENTION": "500ms"}, "-kafka-retention / KAFKA_RETENTION"},
		{nil, map[string]string{"KAFKA_RETENTION": "-1h"}, "-kafka-retention / KAFKA_RETENTION"},
		{[]string{"-hosts", "http://classroom.lan"}, nil, "-hosts / FLOWLAB_HOSTS"},
		{nil, map[string]string{"FLOWLAB_HOSTS": "a.lan,b.lan:8080"}, "-hosts / FLOWLAB_HOSTS"},
		{[]string{"-hosts", "a.lan,"}, nil, "-hosts / FLOWLAB_HOSTS"},
		{[]string{"-max-labs", "0"}, nil, "-max-labs / FLOWLAB_MAX_LABS"},
		{nil, map[string]string{"FLOWLAB_MAX_LABS": "many"}, "-max-labs / FLOWLAB_MAX_LABS"},
		{[]string{"-idle-stop", "500ms"}, nil, "-idle-stop / FLOWLAB_IDLE_STOP"},
		{nil, map[string]string{"FLOWLAB_SANDBOX_TTL": "30"}, "-sandbox-ttl / FLOWLAB_SANDBOX_TTL"},
		{[]string{"-instance", "eu-1"}, nil, "-instance / FLOWLAB_INSTANCE: instance name \"eu-1\" must be 1–12 lower-case letters or digits"},
		{nil, map[string]string{"FLOWLAB_INSTANCE": "EU1"}, "-instance / FLOWLAB_INSTANCE"},
		{[]string{"-instance", "eu_1"}, nil, "-instance / FLOWLAB_INSTANCE"},
		{[]string{"-instance", "abcdefghijklm"}, nil, "-instance / FLOWLAB_INSTANCE"},
		{[]string{"-teach-key", "short-key"}, nil, "-teach-key / FLOWLAB_TEACH_KEY: an instructor's key is at least 16 characters"},
		{nil, map[string]string{"FLOWLAB_TEACH_KEY": "sixteen chars&more"}, "-teach-key / FLOWLAB_TEACH_KEY"},
		{[]string{"stray"}, nil, "unexpected argument"},
		{[]string{"-nope"}, nil, "not defined"},
	}
	for _, c := range cases {
		_, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want it to mention %q", c.args, c.env, err, c.want)
		}
	}
}

func TestKafkaRetentionIsADuration(t *testing.T) {
	for _, c := range []struct {
		env  string
		want time.Duration
	}{{"", 10 * time.Minute}, {"2h", 2 * time.Hour}, {"0", 0}} {
		cfg, err := parseConfig(nil, func(k string) string { return map[string]string{"KAFKA_RETENTION": c.env}[k] }, io.Discard)
		if err != nil || cfg.KafkaRetention != c.want {
			t.Errorf("KAFKA_RETENTION=%q: retention %v (%v), want %v", c.env, cfg.KafkaRetention, err, c.want)
		}
	}
}

func TestLabLimitsHaveDefaults(t *testing.T) {
	c, err := parseConfig([]string{"-idle-stop", "2s"}, func(k string) string { return map[string]string{"FLOWLAB_MAX_LABS": "3"}[k] }, io.Discard)
	if err != nil || c.MaxLabs != 3 || c.IdleStop != 2*time.Second || c.SandboxTTL != 30*time.Minute {
		t.Fatalf("config %+v (%v): want 3 labs, 2s idle stop, 30m sandbox ttl", c, err)
	}
}

// The README's configuration table must list every setting as the code has it.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	var kafka string
	for _, s := range c.settings(&kafka) {
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "(empty)"
		}
		row := "| `-" + s.flag + "` | `" + s.env + "` | " + def + " | " + s.usage + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row\n%s", row)
		}
	}
}
