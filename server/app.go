package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"flowlab/flow"
	"flowlab/scenarios/asyncmsg"
	"flowlab/scenarios/compare"
	"flowlab/scenarios/eventdriven"
	"flowlab/scenarios/reqresp"
	"flowlab/scenarios/workqueue"
	progressdb "flowlab/server/progress" // named apart from a test's var progress
	"flowlab/walk"
	"flowlab/walks"
)

// shutdownWait bounds a graceful stop: SIGINT or SIGTERM leaves nothing
// listening after it.
const shutdownWait = 4 * time.Second

// Timeouts of the page server. A websocket outlives them: its upgrade clears
// the connection's deadlines, and the hub keeps its own.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 30 * time.Second
	idleTimeout  = 5 * time.Second // an idle keep-alive connection is closed, as Node's http server does
)

// App is flowlab wired together: listeners bound, nothing running yet.
type App struct {
	cfg     Config
	log     *slog.Logger
	stdout  io.Writer
	web     net.Listener
	kafka   *kafkaBroker
	rabbit  *rabbitNode // flowlab's private RabbitMQ node, or nil
	brokers *brokerWatch
	// learners keeps each learner's walkthrough progress across restarts.
	learners *progressdb.Store
	teachKey string     // the instructor's secret
	classes  *classRoom // who is in which class, and the join limits

	home   string // the default lab's id: -lab, after the instance name if any
	labsMu sync.RWMutex
	labs   map[string]*labRun // by id: the default lab and the sandboxes
	gone   map[string]bool    // sandboxes torn down, so their pages say so

	walks     map[string]*walk.Walk // every walkthrough, by id
	walkOrder []*walk.Walk          // as their files are named, as the start page lists them

	// Set by Run before it serves: scenarios start under runCtx, through
	// start, as a page first opens them.
	runCtx context.Context
	start  func(name string, f func(context.Context) error) bool
	runs   atomic.Int64 // scenario runs not yet ended, every lab's
}

// open binds every listener, so that a port in use fails at once with the
// flag to change, and wires the default lab.
func open(cfg Config, stdout, stderr io.Writer) (app *App, err error) {
	a := &App{cfg: cfg, stdout: stdout, log: slog.New(slog.NewTextHandler(stderr, nil)), labs: map[string]*labRun{}, gone: map[string]bool{}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.web, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, listenError(err, cfg.Addr, "-addr", "FLOWLAB_ADDR")
	}
	brokers := cfg.KafkaBrokers
	if len(brokers) == 0 {
		if a.kafka, err = startKafka(cfg.KafkaAddr, cfg.KafkaRetention); err != nil {
			return nil, listenError(err, cfg.KafkaAddr, "-kafka-addr", "KAFKA_ADDR")
		}
		brokers = a.kafka.Addrs()
	}
	// The scenarios get the private node's URL before it answers: they
	// redial by themselves, so the page is served at once.
	rabbit := planRabbit(cfg.AMQPURL, cfg.AMQPURL == defaultAMQPURL(), findRabbitServer(), rabbitDataDir, a.log)
	a.cfg.AMQPURL, a.rabbit = rabbit.URL, rabbit.Node
	a.brokers = newBrokerWatch(brokers, a.kafka != nil, rabbit)

	lab, err := a.openLab(cfg.Lab, false)
	if err != nil {
		return nil, err
	}
	a.home = lab.lab.ID
	a.labs[a.home] = lab
	files := cfg.walkFiles
	if files == nil {
		files = walks.Files
	}
	if err := a.loadWalks(files); err != nil {
		lab.close()
		return nil, err
	}
	// Opened last, so that a port in use is reported first; a second
	// flowlab on the same file stops here with a sentence, not a hang.
	if cfg.Progress == "" {
		err = errors.New("-progress / FLOWLAB_PROGRESS: neither XDG_STATE_HOME nor HOME is set, so there is no default place for the progress file: give one")
	} else {
		a.learners, err = progressdb.Open(cfg.Progress)
	}
	if err == nil {
		a.teachKey = cfg.TeachKey
		if a.teachKey == "" {
			a.teachKey, err = a.learners.TeachKey()
		}
	}
	if err != nil {
		lab.close()
		return nil, err
	}
	a.classes = newClassRoom()
	return a, nil
}

// openLab wires lab id of this instance: every scenario with its own hub. The
// default lab's product-service listens on -product-addr; any other lab's on a
// free port of the same host, so that it is reachable as the default lab's is.
// An exact lab's emitters pass on every event, however busy (see eventTap).
func (a *App) openLab(id string, exact bool) (*labRun, error) {
	sandbox := id != a.cfg.Lab
	newLab := flow.NewLabIn
	if sandbox {
		newLab = flow.NewSandboxIn
	}
	lab, err := newLab(a.cfg.Instance, id)
	if err != nil {
		return nil, err
	}
	l := &labRun{lab: lab, sandbox: sandbox, exact: exact}
	productAddr := a.cfg.ProductAddr
	if l.sandbox {
		host, _, _ := net.SplitHostPort(productAddr) // checked by parseConfig
		productAddr = net.JoinHostPort(host, "0")
	}
	openers := []struct {
		name, broker string // broker: the one the scenario cannot work without
		open         func(*flow.Emitter) (flow.Scenario, error)
	}{
		{"request-response", "", func(em *flow.Emitter) (flow.Scenario, error) {
			s, err := reqresp.Open(reqresp.Config{ProductAddr: productAddr, Emit: em})
			if err != nil {
				return nil, listenError(err, productAddr, "-product-addr", "PRODUCT_ADDR")
			}
			// Opened again after an idle stop, it keeps its port: the
			// learner's code still calls it there.
			productAddr = s.ProductAddr()
			return s, nil
		}},
		{"event-driven", "RabbitMQ", func(em *flow.Emitter) (flow.Scenario, error) {
			return eventdriven.Open(eventdriven.Config{AMQPURL: a.cfg.AMQPURL, Lab: lab, Emit: em})
		}},
		{"work-queue", "RabbitMQ", func(em *flow.Emitter) (flow.Scenario, error) {
			return workqueue.Open(workqueue.Config{AMQPURL: a.cfg.AMQPURL, Lab: lab, Emit: em})
		}},
		{"async-messaging", "Kafka", func(em *flow.Emitter) (flow.Scenario, error) {
			return asyncmsg.Open(asyncmsg.Config{Brokers: a.brokers.kafkaAddrs, Lab: lab, Emit: em})
		}},
		// It needs Kafka too, which flowlab embeds: RabbitMQ is the one a
		// learner may have to start.
		{"compare", "RabbitMQ", func(em *flow.Emitter) (flow.Scenario, error) {
			return compare.Open(compare.Config{AMQPURL: a.cfg.AMQPURL, Brokers: a.brokers.kafkaAddrs, Lab: lab, Emit: em})
		}},
	}
	for _, o := range openers {
		if err := l.add(o.name, o.broker, a, o.open); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

// Run serves until ctx ends, then shuts down within shutdownWait.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
		mu      sync.Mutex
		running = map[string]bool{} // the parts still running, by name
	)
	stopping := false // once set, nothing new starts: the wait below has begun
	start := func(name string, f func(context.Context) error) bool {
		mu.Lock()
		defer mu.Unlock()
		if stopping {
			return false
		}
		wg.Add(1)
		running[name] = true
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(running, name)
				mu.Unlock()
			}()
			if err := f(runCtx); err != nil {
				errs <- err
				cancel()
			}
		}()
		return true
	}
	a.runCtx, a.start = runCtx, start
	if a.rabbit != nil {
		// It stops as soon as runCtx ends, alongside the rest of the
		// shutdown, and the wait below waits for it.
		start("private RabbitMQ node", func(ctx context.Context) error { a.rabbit.Run(ctx); return nil })
	}
	start("broker watch", func(ctx context.Context) error { a.brokers.Run(ctx); return nil })
	// The default lab runs from the start, as a learner following the
	// article expects; a sandbox waits for its page.
	if l, ok := a.lab(a.home); ok {
		for _, s := range l.scenarios {
			a.wake(l, s, false)
		}
	}
	start("idle sweep", func(ctx context.Context) error { a.sweepIdle(ctx); return nil })
	start("web server", func(context.Context) error {
		if err := srv.Serve(a.web); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	fmt.Fprintf(a.stdout, "flowlab is running: open %s\n", pageURL(a.web.Addr()))
	fmt.Fprintf(a.stdout, "instructor: %s\n", a.instructorLink())
	a.log.Info("started", "web", a.web.Addr().String(), "kafka", a.brokers.kafkaAddrs, "amqp", redactURL(a.cfg.AMQPURL))

	<-runCtx.Done()
	shutCtx, done := context.WithTimeout(context.Background(), shutdownWait)
	defer done()
	// Shutdown does not wait for hijacked websocket connections: the hubs
	// close those as their context ends.
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	cancel()
	mu.Lock()
	stopping = true
	mu.Unlock()
	// Every part is built to stop within shutdownWait; one that does not
	// must not hold the process: the promise is a prompt stop.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutCtx.Done():
		mu.Lock()
		late := slices.Sorted(maps.Keys(running))
		mu.Unlock()
		a.close()
		a.log.Error("stopped without waiting for parts still stopping", "parts", late)
		return fmt.Errorf("%s did not stop within %v", strings.Join(late, ", "), shutdownWait)
	}
	a.endLabs(shutCtx)
	a.close()
	a.log.Info("stopped")
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// endLabs ends every lab once their runs have stopped. A sandbox is torn
// down: its id is random and never comes back, so what it made on the
// brokers would be nobody's. The default lab's objects stay, as they bear
// the article's names, which a learner's own clients may share. The
// teardowns run at once, within what is left of ctx.
func (a *App) endLabs(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range a.allLabs() {
		if !l.sandbox {
			l.end() // and a sandbox never opened frees its product-service's port
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.teardown(ctx, l, "flowlab stopped")
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.log.Warn("stopped before every sandbox was torn down: some of their broker objects may be left")
	}
}

func (a *App) close() {
	if a.web != nil {
		a.web.Close()
	}
	if a.kafka != nil {
		a.kafka.Close()
	}
	if a.brokers != nil {
		a.brokers.Close()
	}
	if a.learners != nil {
		a.learners.Close()
	}
}

// listenError turns "address already in use" into one line naming the flag
// and variable to change.
func listenError(err error, addr, flagName, env string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is already in use: choose another address with %s or %s", addr, flagName, env)
	}
	return err
}

// pageURL is the address a person can open; a wildcard host becomes localhost.
func pageURL(addr net.Addr) string {
	_, port, _ := net.SplitHostPort(addr.String())
	host, _, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
