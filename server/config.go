package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
)

// Config is every address flowlab uses; each comes from a flag or, failing
// that, an environment variable.
type Config struct {
	Addr         string   // the page and the websocket
	Hosts        []string // names, besides this machine's, the page may be opened by
	ProductAddr  string   // product-service of the request-response pattern
	KafkaBrokers []string // an external Kafka cluster; empty means the embedded broker
	KafkaAddr    string   // where the embedded broker listens
	AMQPURL      string   // RabbitMQ
	Lab          string   // the lab's id, which names every broker object it uses
	Instance     string   // this flowlab among several sharing the brokers; "" when alone
	Progress     string   // the learners' progress file; "" when no default place exists
	TeachKey     string   // the instructor's secret; "" makes one, kept in the progress file

	MaxLabs    int           // labs open at once, the default lab included
	IdleStop   time.Duration // a scenario with no browser this long stops its load
	SandboxTTL time.Duration // a sandbox nobody opened this long is torn down

	// KafkaRetention is how long the embedded broker keeps records; 0
	// keeps them all (and their memory).
	KafkaRetention time.Duration
	kafkaRetention string // as given
	maxLabs        string
	idleStop       string
	sandboxTTL     string
	hosts          string // Hosts as given, comma-separated
	walkFiles      fs.FS  // the walkthroughs; nil for those built in (a test gives its own)
}

// setting is one configurable value: its flag, its environment variable, its
// default and what it is for. The table feeds the flags, the errors and the
// README's configuration table.
type setting struct {
	flag, env, def, usage string
	dst                   *string
}

func (c *Config) settings(kafka *string) []setting {
	return []setting{
		{"addr", "FLOWLAB_ADDR", ":8080", "address of the web page and websocket", &c.Addr},
		{"hosts", "FLOWLAB_HOSTS", "", "comma-separated host names, besides localhost and this machine's addresses, that may open the page (e.g. a classroom's LAN name)", &c.hosts},
		{"product-addr", "PRODUCT_ADDR", ":5000", "address of product-service (request-response)", &c.ProductAddr},
		{"kafka-brokers", "KAFKA_BROKERS", "", "comma-separated external Kafka brokers; empty starts the embedded broker", kafka},
		{"kafka-addr", "KAFKA_ADDR", "127.0.0.1:9092", "address of the embedded Kafka broker", &c.KafkaAddr},
		{"kafka-retention", "KAFKA_RETENTION", "10m", "how long the embedded Kafka broker keeps records (log.retention.ms, every topic); 0 keeps every record, in memory", &c.kafkaRetention},
		{"amqp-url", "AMQP_URL", "amqp://guest:guest@localhost:5672/", "RabbitMQ URL", &c.AMQPURL},
		{"lab", "FLOWLAB_LAB", flow.DefaultLab, "lab id: names its exchanges, queues, topics and groups; the default lab uses the article's names", &c.Lab},
		{"instance", "FLOWLAB_INSTANCE", "", "name of this flowlab among several sharing one RabbitMQ and one Kafka (1–12 lower-case letters or digits): every lab id and broker name starts with <instance>-, the default lab's too; empty keeps the article's names (docs/SCALING.md)", &c.Instance},
		{"max-labs", "FLOWLAB_MAX_LABS", "20", "most labs open at once, the default lab included; past it \"New sandbox\" answers that flowlab is full", &c.maxLabs},
		{"idle-stop", "FLOWLAB_IDLE_STOP", "10m", "a scenario no browser has watched for this long stops its load until its page is opened again", &c.idleStop},
		{"sandbox-ttl", "FLOWLAB_SANDBOX_TTL", "30m", "a sandbox nobody has opened for this long is torn down (never the default lab)", &c.sandboxTTL},
		{"teach-key", "FLOWLAB_TEACH_KEY", "", "the instructor's secret in the link to /teach that flowlab prints at start (at least 16 characters: letters, digits, - _ . ~); empty makes a random one, kept in the progress file", &c.TeachKey},
		{"progress", "FLOWLAB_PROGRESS", "", "file keeping each learner's walkthrough progress (made, with its folder, when missing); empty means $XDG_STATE_HOME/flowlab/progress.db, or ~/.local/state/flowlab/progress.db when XDG_STATE_HOME is not set", &c.Progress},
	}
}

// parseConfig reads flags over environment variables over defaults, and
// rejects any value that cannot work with a sentence naming the flag.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	var kafka string
	fs := flag.NewFlagSet("flowlab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := c.settings(&kafka)
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.flag, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: flowlab takes only flags (see -help)", fs.Arg(0))
	}
	for _, s := range settings {
		if err := check(s.flag, *s.dst); err != nil {
			return c, fmt.Errorf("-%s / %s: %w", s.flag, s.env, err)
		}
	}
	if kafka != "" {
		c.KafkaBrokers = strings.Split(kafka, ",")
	}
	c.KafkaRetention, _ = time.ParseDuration(c.kafkaRetention) // checked above, as the three below
	c.MaxLabs, _ = strconv.Atoi(c.maxLabs)
	c.IdleStop, _ = time.ParseDuration(c.idleStop)
	c.SandboxTTL, _ = time.ParseDuration(c.sandboxTTL)
	if c.Progress == "" {
		c.Progress = defaultProgress(getenv)
	}
	if c.hosts != "" {
		for _, h := range strings.Split(c.hosts, ",") {
			c.Hosts = append(c.Hosts, strings.TrimSuffix(strings.ToLower(h), "."))
		}
	}
	return c, nil
}

func check(name, v string) error {
	switch name {
	case "addr", "product-addr", "kafka-addr":
		return checkAddr(v)
	case "kafka-brokers":
		if v == "" {
			return nil
		}
		for _, b := range strings.Split(v, ",") {
			if err := checkAddr(b); err != nil {
				return err
			}
		}
	case "kafka-retention":
		d, err := time.ParseDuration(v)
		if err != nil || (d != 0 && d < time.Second) {
			return fmt.Errorf("%q is not a retention like 10m or 2h (at least 1s, or 0 to keep every record)", v)
		}
	case "max-labs":
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%q is not a number of labs from 1 to 1000", v)
		}
	case "idle-stop", "sandbox-ttl":
		if d, err := time.ParseDuration(v); err != nil || d < time.Second {
			return fmt.Errorf("%q is not a duration like 10m or 1h (at least 1s)", v)
		}
	case "hosts":
		if v == "" {
			return nil
		}
		for _, h := range strings.Split(v, ",") {
			if !hostName.MatchString(h) {
				return fmt.Errorf("%q is not a host name like classroom.local (no scheme, port or spaces)", h)
			}
		}
	case "teach-key":
		if v != "" && !teachKeyOK.MatchString(v) {
			return errors.New("an instructor's key is at least 16 characters, only letters, digits and - _ . ~ (it travels in a link)")
		}
	case "lab":
		if _, err := flow.NewLab(v); err != nil {
			return err
		}
	case "instance":
		return flow.CheckInstance(v)
	case "amqp-url":
		if _, err := amqp.ParseURI(v); err != nil {
			return fmt.Errorf("%q is not an AMQP URL like amqp://guest:guest@localhost:5672/: %v", v, err)
		}
	}
	return nil
}

// defaultProgress is where the XDG base directory spec puts state: data
// that survives a restart but is no document of the user's. A relative
// XDG_STATE_HOME is ignored, as the spec says. "" when there is no home.
func defaultProgress(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "flowlab", "progress.db")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "flowlab", "progress.db")
	}
	return ""
}

// hostName is a DNS name or an IPv4 address; an IPv6 address needs no
// configuring, as only this machine's are reachable.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

func checkAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. :8080 or 127.0.0.1:8080)", v)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 0 || n > 65535 || fmt.Sprint(n) != port {
		return errors.New("port " + port + " is not a number from 0 to 65535")
	}
	return nil
}
