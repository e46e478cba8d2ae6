package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitPlan is which RabbitMQ flowlab uses, and what the page says while
// none answers.
type rabbitPlan struct {
	URL   string      // what the scenarios and the broker watch dial
	Node  *rabbitNode // flowlab's private node, to be run; nil when none
	HowTo string      // how a person gets a broker, shown while none answers
}

// howToGetRabbit is what the page says when the configured broker does not
// answer.
const howToGetRabbit = "Get one with `sudo apt-get install rabbitmq-server && sudo rabbitmq-server -detached`, " +
	"or `docker compose up -d rabbitmq`, or point AMQP_URL at yours."

// planRabbit keeps url unless it is the default (isDefault) and nothing
// listens there: then a private node is planned when server (the
// rabbitmq-server script; "" when not installed) exists, and otherwise the
// page says the one command that installs it. A URL the user chose is always
// kept: flowlab does not second-guess it.
func planRabbit(rawURL string, isDefault bool, server string, dataDir func() (string, error), log *slog.Logger) rabbitPlan {
	plan := rabbitPlan{URL: rawURL, HowTo: howToGetRabbit}
	if !isDefault || listening(rawURL) {
		return plan
	}
	if server == "" {
		if installCommand != "" {
			plan.HowTo = "rabbitmq-server is not installed here: install it with `" + installCommand + "`. " +
				"flowlab uses the node the package starts, or starts a private node of its own when you run it again."
		}
		return plan
	}
	dir, err := dataDir()
	if err == nil {
		var n *rabbitNode
		if n, err = newRabbitNode(server, dir, "flowlab", redactURL(rawURL), log); err == nil {
			plan.URL, plan.Node = n.URL, n
			return plan
		}
	}
	plan.HowTo = fmt.Sprintf("flowlab could not prepare a private RabbitMQ node (%v). %s", err, howToGetRabbit)
	return plan
}

// defaultAMQPURL is the URL flowlab uses when neither -amqp-url nor
// AMQP_URL names one.
func defaultAMQPURL() string {
	var c Config
	var kafka string
	for _, s := range c.settings(&kafka) {
		if s.flag == "amqp-url" {
			return s.def
		}
	}
	return ""
}

// listening reports whether anything accepts TCP connections at the URL's
// host and port: a refused dial on this machine fails at once.
func listening(rawURL string) bool {
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// rabbitDataDir is where the private node keeps its database, logs and
// Erlang cookie: in the user's cache folder, so a later run finds the
// durable queues of the last one.
func rabbitDataDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "flowlab", "rabbitmq"), nil
}

// rabbitNode is a RabbitMQ node of flowlab's own, for a first run on a
// machine where rabbitmq-server is installed but no node answers at the
// default URL: its own AMQP and distribution ports on 127.0.0.1, its own
// node name and data folder. It runs as the user who runs flowlab (Debian's
// /usr/sbin wrapper would switch root to the rabbitmq user, who cannot reach
// a folder under /root), starts in the background, and stops with flowlab.
type rabbitNode struct {
	URL  string // AMQP as guest on its port
	Name string // Erlang node name, name@localhost

	server   string // the rabbitmq-server script
	dir      string
	port     int    // AMQP
	distPort int    // Erlang distribution, for rabbitmqctl
	instead  string // where nothing answered, credentials removed
	log      *slog.Logger

	mu       sync.Mutex
	phase    nodePhase
	launched time.Time
	err      error // why it is down
}

type nodePhase int

const (
	nodeStarting nodePhase = iota
	nodeUp
	nodeDown
)

const (
	// readyPoll is how often a starting node is dialed: it takes ~9 s on
	// an idle machine, ~25 s measured on a busy one.
	readyPoll = 500 * time.Millisecond
	// startLimit is how long a node may take before flowlab gives up.
	startLimit = 2 * time.Minute
	// stopGrace is how long the node may take to stop cleanly (~1.4 s
	// measured) before it is killed: flowlab's whole stop must stay within
	// the promised 5 s.
	stopGrace = 2500 * time.Millisecond
)

// newRabbitNode prepares a node named name@localhost with its data in dir
// and two free ports. It starts nothing.
func newRabbitNode(server, dir, name, instead string, log *slog.Logger) (*rabbitNode, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "amqp", User: url.UserPassword("guest", "guest"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Path: "/"}
	return &rabbitNode{
		URL: u.String(), Name: name + "@localhost",
		server: server, dir: dir, port: ports[0], distPort: ports[1], instead: instead, log: log,
	}, nil
}

// freePorts asks the kernel for n free ports of 127.0.0.1. Not 5672: a
// system node may take that one later.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Run starts the node, says how far it has got, and stops it when ctx ends;
// it returns once the node's processes are gone.
func (n *rabbitNode) Run(ctx context.Context) {
	cmd, err := n.launch()
	if err != nil {
		n.down(fmt.Errorf("could not start %s: %w", n.server, err))
		return
	}
	n.log.Info("no RabbitMQ at the default URL: starting a private node", "node", n.Name, "url", redactURL(n.URL), "data", n.dir)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	poll := time.NewTicker(readyPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			n.stop(cmd, exited)
			return
		case err := <-exited:
			n.down(fmt.Errorf("it stopped (%v): %s", err, n.lastLogLine()))
			return
		case <-poll.C:
			if p, _ := n.State(); p != nodeStarting {
				continue
			}
			if n.answers(ctx) {
				n.set(nodeUp, nil)
				n.log.Info("private RabbitMQ node up", "node", n.Name, "after", time.Since(n.launched).Round(time.Second))
			} else if time.Since(n.launched) > startLimit {
				n.stop(cmd, exited)
				n.down(fmt.Errorf("it did not answer within %s: %s", startLimit, n.lastLogLine()))
				return
			}
		}
	}
}

// launch writes the node's own configuration and starts rabbitmq-server in
// the foreground, in a process group of its own.
func (n *rabbitNode) launch() (*exec.Cmd, error) {
	logDir := filepath.Join(n.dir, "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	// Its own listener on loopback, and no plugins: the management
	// plugin's port 15672 is the system node's to take.
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n", n.port)
	if err := os.WriteFile(n.file("rabbitmq.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.file("enabled_plugins"), []byte("[].\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.Remove(n.file("node.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err // a stale one would name another process
	}
	out, err := os.Create(filepath.Join(logDir, "startup.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(n.server)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = nodeProcAttr()
	cmd.Env = append(os.Environ(),
		"HOME="+n.dir, // the Erlang cookie lives with the node, not in the user's home
		"RABBITMQ_NODENAME="+n.Name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_MNESIA_BASE="+n.file("mnesia"),
		"RABBITMQ_LOG_BASE="+logDir,
		"RABBITMQ_CONFIG_FILE="+n.file("rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+n.file("advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+n.file("rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+n.file("enabled_plugins"),
		"RABBITMQ_PID_FILE="+n.file("node.pid"),
		// Either would make the script exec the VM itself instead of
		// turning SIGTERM into a clean stop.
		"RABBITMQ_ALLOW_INPUT=",
		"NOTIFY_SOCKET=",
	)
	n.mu.Lock()
	n.launched = time.Now()
	n.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// stop sends SIGTERM to the script, which stops the Erlang VM cleanly and
// waits for it; one that overruns stopGrace is killed with its whole process
// group, so no beam.smp outlives flowlab. (rabbitmqctl stop would take ~6 s,
// most of it starting the CLI's own VM.)
func (n *rabbitNode) stop(cmd *exec.Cmd, exited <-chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopGrace):
		killNodeGroup(cmd.Process, n.vmPID())
		<-exited
	}
	n.set(nodeDown, errors.New("it stopped with flowlab"))
	n.log.Info("private RabbitMQ node stopped", "node", n.Name)
}

// vmPID is the Erlang VM's process id, which the node writes once it boots;
// 0 before that.
func (n *rabbitNode) vmPID() int {
	b, err := os.ReadFile(n.file("node.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// answers reports whether the node takes an AMQP connection as guest.
func (n *rabbitNode) answers(ctx context.Context) bool {
	conn, err := amqp.DialConfig(n.URL, amqp.Config{Dial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: readyPoll}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second)) // amqp091 clears it after the handshake
		}
		return c, err
	}})
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// State is where the node is (starting, up or down) and what it is doing in
// words for a person; the page shows them after "RabbitMQ at <URL> is".
func (n *rabbitNode) State() (nodePhase, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.phase, n.status()
}

func (n *rabbitNode) status() string {
	about := fmt.Sprintf("nothing answered at %s, so flowlab runs rabbitmq-server as node %s on port %d, with its data in %s, and stops it on exit",
		n.instead, n.Name, n.port, n.dir)
	switch n.phase {
	case nodeStarting:
		secs := 0
		if !n.launched.IsZero() {
			secs = int(time.Since(n.launched).Seconds())
		}
		return fmt.Sprintf("starting a private RabbitMQ node… (%d s, usually about 10 s): %s", secs, about)
	case nodeUp:
		return "answering: flowlab's private node; " + about
	}
	return fmt.Sprintf("not answering: flowlab's private node %s is down, as %v. Its log is in %s. %s",
		n.Name, n.err, filepath.Join(n.dir, "log"), howToGetRabbit)
}

func (n *rabbitNode) set(p nodePhase, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.phase, n.err = p, err
}

func (n *rabbitNode) down(err error) {
	n.set(nodeDown, err)
	n.log.Error("private RabbitMQ node down", "node", n.Name, "err", err, "log", filepath.Join(n.dir, "log"))
}

func (n *rabbitNode) file(name string) string { return filepath.Join(n.dir, name) }

// lastLogLine is the script's last words, where rabbitmq-server says why it
// could not start (a node name in use, a port taken).
func (n *rabbitNode) lastLogLine() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "log", "startup.log"))
	if err != nil {
		return "no startup log"
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	last := strings.TrimSpace(string(lines[len(lines)-1]))
	if len(last) > 200 {
		last = last[:200] + "…"
	}
	return last
}
