package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Two flowlabs, each with an -instance of its own, share the real RabbitMQ
// and one Kafka, with the same -lab, as two servers started alike would.
// Every pattern runs in each one's default lab and in a sandbox of each.
// Neither sees a message of the other, every broker object starts with its
// instance's prefix, tearing down one's sandbox leaves the other's objects
// alone, and stopping one leaves the other's traffic going.
func TestTwoInstancesShareTheBrokers(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl is needed to list what RabbitMQ holds")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kafka := cluster.ListenAddrs()
	names := [2]string{testTag + "a", testTag + "b"}
	lab := testLab()
	common := []string{"-lab", lab, "-kafka-brokers", strings.Join(kafka, ",")}
	var insts [2]*instance
	// Cleanups run last first: this one after both servers have stopped.
	// It deletes every object of the test's labs, prefixed or not, so that
	// a broken prefix leaves nothing either.
	t.Cleanup(func() {
		deleteRabbitObjects(func(name string) bool {
			if strings.HasPrefix(name, names[0]+"-") || strings.HasPrefix(name, names[1]+"-") || strings.HasSuffix(name, "."+lab) {
				return true
			}
			for _, in := range insts {
				if in != nil && in.sandbox != "" && strings.HasSuffix(name, "."+in.localIDs()[1]) {
					return true
				}
			}
			return false
		})
	})
	for i, name := range names {
		// a's sandbox is torn down once nobody watches it; b's outlives the test.
		ttl := map[int]string{0: "3s", 1: "30m"}[i]
		insts[i] = &instance{name: name, s: MustStart(t, append(common, "-instance", name, "-sandbox-ttl", ttl)...)}
	}
	for _, in := range insts {
		in.home, in.sandbox = in.s.homeLab(t), in.s.instanceSandbox(t, in.name)
		if want := "/labs/" + in.name + "-" + lab; in.home != want {
			t.Fatalf("instance %s's default lab is %s, want %s", in.name, in.home, want)
		}
		for _, path := range []string{in.home, in.sandbox} {
			for _, sc := range []string{"request-response", "event-driven", "work-queue", "async-messaging"} {
				in.watches = append(in.watches, watchScenario(t, in.s, path, sc))
			}
		}
	}
	// Each lab must send and handle messages; a stalled one is reported
	// with what it saw, which says more than the stall.
	deadline := time.Now().Add(60 * time.Second)
	for _, in := range insts {
		for _, w := range in.watches {
			for !w.flowed() && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if !w.flowed() {
				t.Errorf("%s: too little traffic within 60 s: %v", w.where, w.snapshot())
			}
			w.checkOwnMessagesOnly(t)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// What the brokers hold, by instance: all of it prefixed, none shared.
	rabbit, topics := rabbitObjects(t), kafkaObjects(t, kafka)
	for _, name := range append(slices.Clone(rabbit), topics...) {
		obj := name[strings.IndexByte(name, ' ')+1:]
		for _, in := range insts {
			for _, id := range in.localIDs() {
				if strings.HasSuffix(obj, "."+id) && !strings.HasPrefix(obj, names[0]+"-") && !strings.HasPrefix(obj, names[1]+"-") {
					t.Errorf("%s names a lab of the test's instances without an instance prefix", name)
				}
			}
		}
	}
	held := [2][]string{}
	for i, in := range insts {
		held[i] = prefixed(append(slices.Clone(rabbit), topics...), in.name+"-")
		for _, base := range []string{"exchange %s-ecommerce.%s", "queue %s-ecommerce.dlq.%s", "queue %s-emails.%s", "topic %s-orders.%s", "group %s-inventory.%s"} {
			for _, id := range in.localIDs() {
				if want := fmt.Sprintf(base, in.name, id); !slices.Contains(held[i], want) {
					t.Errorf("instance %s: the brokers lack %s; they hold %v", in.name, want, held[i])
				}
			}
		}
	}
	if both := intersect(held[0], held[1]); len(both) > 0 {
		t.Fatalf("both instances use %v", both)
	}
	var unprefixed []string
	for _, name := range topics {
		if !strings.HasPrefix(name[strings.IndexByte(name, ' ')+1:], testTag) {
			unprefixed = append(unprefixed, name)
		}
	}
	if len(unprefixed) > 0 {
		t.Errorf("the shared Kafka holds %v, of no instance", unprefixed)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Nobody watches a's sandbox any more: a tears it down.
	a, b := insts[0], insts[1]
	for _, w := range a.watches[4:] {
		w.close()
	}
	// The log says so once the broker objects are deleted, after the lab
	// has left the count of open ones.
	torn := regexp.MustCompile(`msg="sandbox torn down" lab=` + strings.TrimPrefix(a.sandbox, "/labs/") + ` why="nobody opened it`)
	waitWithin(t, 30*time.Second, "instance a's sandbox torn down", func() bool { return torn.MatchString(a.s.stderr.String()) })
	if strings.Contains(a.s.stderr.String(), "sandbox teardown left broker objects") {
		t.Errorf("a's sandbox teardown failed:\n%s", a.s.stderr)
	}
	gone := "." + strings.TrimPrefix(a.sandbox, "/labs/"+a.name+"-")
	after := append(rabbitObjects(t), kafkaObjects(t, kafka)...)
	for _, name := range held[0] {
		if slices.Contains(after, name) == strings.HasSuffix(name, gone) {
			t.Errorf("after a's sandbox was torn down, %s is %s", name, map[bool]string{true: "still there", false: "gone"}[strings.HasSuffix(name, gone)])
		}
	}
	if got := prefixed(after, b.name+"-"); !slices.Equal(got, held[1]) {
		t.Errorf("tearing down a's sandbox changed b's objects:\nbefore %v\nafter  %v", held[1], got)
	}

	// a stops altogether; b's traffic goes on, still only its own.
	a.s.Stop(t)
	for _, w := range b.watches {
		w.mark()
	}
	waitWithin(t, 60*time.Second, "b's traffic going on", func() bool {
		for _, w := range b.watches {
			if !w.movedSinceMark() {
				return false
			}
		}
		return true
	})
	for _, w := range b.watches {
		w.checkOwnMessagesOnly(t)
	}
}

// Behind a proxy that routes as docs/SCALING.md's nginx example does (its
// rule is read from the page), two instances serve a browser as one flowlab:
// / and "New sandbox" land on either, and every request for a lab reaches the
// instance that runs it, with the owner's cookie and the balancer's name.
func TestLabStickyRouting(t *testing.T) {
	doc, err := os.ReadFile("../docs/SCALING.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^\\s*~(\\S+)\\s+flowlab_\\$instance;$").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/SCALING.md has no nginx map line `~<pattern> flowlab_$instance;`")
	}
	rule := regexp.MustCompile(string(m[1]))
	const name = "flowlab.test" // the balancer's, in every instance's -hosts
	backends := map[string]*url.URL{}
	var order []string
	for _, inst := range []string{testTag + "x", testTag + "y"} {
		s := MustStart(t, "-instance", inst, "-hosts", name)
		backends[inst], _ = url.Parse(s.URL)
		order = append(order, inst)
	}
	var turn atomic.Int64
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		inst := order[turn.Add(1)%int64(len(order))]
		if m := rule.FindStringSubmatch(r.In.URL.Path); m != nil {
			inst = m[rule.SubexpIndex("instance")]
		}
		r.SetURL(backends[inst])
		r.Out.Host = r.In.Host // proxy_set_header Host $host
	}})
	t.Cleanup(proxy.Close)
	ask := func(method, path string, cookie *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, proxy.URL+path, nil)
		req.Host = name
		req.Header.Set("Origin", "http://"+name)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// Read now, so no caller has to close it.
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp
	}

	homes, sandboxes := map[string]bool{}, map[string]*http.Cookie{}
	for range 2 {
		resp := ask(http.MethodGet, "/", nil)
		homes[startPageLab(t, resp)] = true
	}
	for range 4 {
		resp := ask(http.MethodPost, "/labs", nil)
		lab, _ := strings.CutSuffix(resp.Header.Get("Location"), "/request-response")
		for _, c := range resp.Cookies() {
			if c.Name == ownerCookie(strings.TrimPrefix(lab, "/labs/")) {
				sandboxes[lab] = c
			}
		}
	}
	if len(homes) != 2 || len(sandboxes) != 4 {
		t.Fatalf("through the balancer: default labs %v and sandboxes %v; want both instances' default labs and 4 sandboxes with their cookies", homes, sandboxes)
	}
	for lab, cookie := range sandboxes {
		if resp := ask(http.MethodGet, lab+"/request-response", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s through the balancer: %d", lab, resp.StatusCode)
		}
		h := http.Header{"Host": {name}, "Origin": {"http://" + name}, "Cookie": {cookie.String()}}
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(proxy.URL, "http")+lab+"/request-response/ws", h)
		if err != nil {
			t.Fatalf("websocket of %s through the balancer: %v", lab, err)
		}
		var snap snapshotMsg
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.ReadJSON(&snap); err != nil || snap.Lab != strings.TrimPrefix(lab, "/labs/") {
			t.Fatalf("%s's websocket through the balancer: first message of lab %q (%v)", lab, snap.Lab, err)
		}
		// The maker may change it: the cookie reached the instance that made it.
		if r := sendCommand(t, conn, `{"id":1,"op":"set","knob":"latency_ms","value":250}`); !r.OK {
			t.Errorf("the maker's command to %s through the balancer: %+v", lab, r)
		}
		conn.Close()
	}
}

// instance is one flowlab of the test, its labs' paths and what its
// browsers see.
type instance struct {
	name          string
	s             *server
	home, sandbox string // /labs/<id>
	watches       []*scenarioWatch
}

// localIDs are the ids of in's labs within it, as broker names end.
func (in *instance) localIDs() []string {
	var ids []string
	for _, p := range []string{in.home, in.sandbox} {
		ids = append(ids, strings.TrimPrefix(p, "/labs/"+in.name+"-"))
	}
	return ids
}

// homeLab is the default lab's path, where / sends a browser.
func (s *server) homeLab(t *testing.T) string {
	t.Helper()
	resp, err := noRedirect.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return startPageLab(t, resp)
}

// startPageLab is the lab the start page's lessons link to: the default
// lab of the instance that answered.
func startPageLab(t *testing.T, resp *http.Response) string {
	t.Helper()
	page, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`href="(/labs/[^/"]+)/request-response`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /: %d with no link to the default lab's request-response", resp.StatusCode)
	}
	return string(m[1])
}

// instanceSandbox makes a sandbox of instance name and returns its path.
func (s *server) instanceSandbox(t *testing.T, name string) string {
	t.Helper()
	resp := s.newSandbox(t, s.URL)
	m := regexp.MustCompile(`^(/labs/` + name + `-[a-z2-7]{8})/request-response$`).FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /labs: %d to %q, want a sandbox /labs/%s-<8 base32 chars>", resp.StatusCode, resp.Header.Get("Location"), name)
	}
	return m[1]
}

// scenarioWatch is a browser of one scenario of one lab: it keeps the
// latest counters and every hop of a message from outside flowlab.
type scenarioWatch struct {
	where, lab string
	conn       labConn
	mu         sync.Mutex
	counters   map[string]int64
	marked     map[string]int64
	strangers  []string // hops of messages this lab did not send, or of another lab
	done       chan struct{}
}

func watchScenario(t *testing.T, s *server, lab, scenario string) *scenarioWatch {
	t.Helper()
	w := &scenarioWatch{where: lab + "/" + scenario, lab: strings.TrimPrefix(lab, "/labs/"), done: make(chan struct{}),
		conn: dialLab(t, "ws"+strings.TrimPrefix(s.URL, "http")+lab+"/"+scenario+"/ws")}
	go w.read()
	t.Cleanup(w.close)
	return w
}

func (w *scenarioWatch) read() {
	defer close(w.done)
	for {
		var m labMsg
		if err := w.conn.ReadJSON(&m); err != nil {
			return
		}
		w.mu.Lock()
		for _, e := range append(m.Recent, m.Events...) {
			if e.Detail.External || e.Lab != w.lab {
				w.strangers = append(w.strangers, fmt.Sprintf("%s %s→%s of message %s in lab %s", e.Kind, e.From, e.To, e.MsgID, e.Lab))
			}
		}
		if m.Stats != nil {
			w.counters = map[string]int64{}
			for _, c := range m.Stats.Counters {
				w.counters[c.Name] = c.Value
			}
		}
		w.mu.Unlock()
	}
}

func (w *scenarioWatch) close() {
	w.conn.Close()
	<-w.done
}

// progress names, per pattern, counters that grow only with its own
// traffic: sent and handled.
var progress = map[string][]string{
	"request-response": {"calls", "ok"},
	"event-driven":     {"published", "analytics.acked"},
	"work-queue":       {"published", "acked"},
	"async-messaging":  {"produced", "processed"},
}

// flowed says whether messages were both sent and handled: a few are
// enough, as the other instance's would show at once, and a busy RabbitMQ
// takes its time with the article's connection per publish.
func (w *scenarioWatch) flowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	sent, handled := progress[w.scenario()][0], progress[w.scenario()][1]
	return w.counters[sent] >= 2 && w.counters[handled] >= 1
}

func (w *scenarioWatch) snapshot() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.counters)
}

func (w *scenarioWatch) scenario() string { return w.where[strings.LastIndexByte(w.where, '/')+1:] }

func (w *scenarioWatch) mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.marked = maps.Clone(w.counters)
}

func (w *scenarioWatch) movedSinceMark() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range progress[w.scenario()] {
		if w.counters[name] <= w.marked[name] {
			return false
		}
	}
	return true
}

// checkOwnMessagesOnly fails if the lab saw a message it did not send or
// counts one: on shared broker objects the other instance's messages reach
// its consumers as outside messages. (Duplicates are no sign: a busy machine
// makes them in the article's Kafka consumer by itself.)
func (w *scenarioWatch) checkOwnMessagesOnly(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.strangers) > 0 {
		t.Errorf("%s saw %d hops of messages not its own, first %s", w.where, len(w.strangers), w.strangers[0])
	}
	for _, name := range []string{"outside-messages", "outside-requests"} {
		if w.counters[name] != 0 {
			t.Errorf("%s counts %s = %d, want 0: %v", w.where, name, w.counters[name], w.counters)
		}
	}
}

// rabbitObjects lists RabbitMQ's queues and exchanges, as "queue <name>" and
// "exchange <name>".
func rabbitObjects(t *testing.T) []string {
	t.Helper()
	queues, exchanges := rabbitNames("queue"), rabbitNames("exchange")
	var out []string
	for _, l := range []struct {
		kind  string
		names <-chan []string
	}{{"queue", queues}, {"exchange", exchanges}} {
		names, ok := <-l.names
		if !ok {
			t.Fatalf("rabbitmqctl could not list the %ss", l.kind)
		}
		for _, name := range names {
			out = append(out, l.kind+" "+name)
		}
	}
	return out
}

// rabbitNames lists the names of RabbitMQ's objects of kind, queue or
// exchange, in the background: rabbitmqctl takes a second to start. The
// channel is closed without a list when rabbitmqctl fails.
func rabbitNames(kind string) <-chan []string {
	c := make(chan []string, 1)
	go func() {
		defer close(c)
		out, err := exec.Command("rabbitmqctl", "list_"+kind+"s", "-q", "--no-table-headers", "name").Output()
		if err == nil {
			c <- strings.Fields(string(out))
		}
	}()
	return c
}

// kafkaObjects lists the topics and groups of the Kafka at brokers, as
// "topic <name>" and "group <name>", with a new client each time: a client
// answers from its cache for a while.
func kafkaObjects(t *testing.T, brokers []string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := admin.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range topics.Names() {
		out = append(out, "topic "+name)
	}
	for _, name := range groups.Groups() {
		out = append(out, "group "+name)
	}
	return out
}

// prefixed is the objects whose name starts with prefix, sorted.
func prefixed(objects []string, prefix string) []string {
	var out []string
	for _, o := range objects {
		if strings.HasPrefix(o[strings.IndexByte(o, ' ')+1:], prefix) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// waitWithin is waitFor with a bound of its own: traffic at the patterns'
// default rates (2 events/s on RabbitMQ) takes seconds to show.
func waitWithin(t *testing.T, bound time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deleteRabbitObjects deletes the queues and exchanges whose names are
// ours: what tests left. rabbitmqctl lists them, as AMQP cannot; without
// it, nothing is deleted.
func deleteRabbitObjects(ours func(name string) bool) {
	conn, err := amqp.Dial(rabbitURL())
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	queues, exchanges := rabbitNames("queue"), rabbitNames("exchange")
	for kind, names := range map[string]<-chan []string{"queue": queues, "exchange": exchanges} {
		for _, name := range <-names {
			if !ours(name) {
				continue
			}
			if kind == "queue" {
				_, err = ch.QueueDelete(name, false, false, false)
			} else {
				err = ch.ExchangeDelete(name, false, false)
			}
			if err != nil { // the broker closed the channel: the rest need another
				if ch, err = conn.Channel(); err != nil {
					return
				}
			}
		}
	}
}

func rabbitURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return defaultAMQPURL()
}
