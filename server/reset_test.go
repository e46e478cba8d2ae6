package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	amqp "github.com/rabbitmq/amqp091-go"

	"flowlab/flow"
)

func counterOf(st flow.Stats, name string) int64 {
	for _, c := range st.Counters {
		if c.Name == name {
			return c.Value
		}
	}
	return -1
}

// A reset of the work queue, with jobs failing and a message left in its
// DLQ: the connected page gets a snapshot with every counter zero and every
// knob at its default, the DLQ is empty (it was deleted and declared again),
// the broker holds one set of the lab's queues, and jobs flow again.
func TestResetStartsTheScenarioOver(t *testing.T) {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Skip("rabbitmqctl is needed to list what the broker holds")
	}
	a, url := startServer(t, func(*App, string) {})
	lab := url[strings.LastIndex(url, "/")+1:]
	sr, _ := a.labs[lab].scenario("work-queue")
	defaults := knobValues(sr.Knobs())
	for knob, v := range map[string]string{"emails.failure": "60", "order-service.rate": "50"} {
		if r := sr.command(command{Op: "set", Knob: knob, Value: json.RawMessage(v)}, "a test"); !r.(reply).OK {
			t.Fatalf("set %s: %+v", knob, r)
		}
	}
	waitFor(t, "retries", func() bool { return counterOf(sr.Stats(), "retries") > 0 })

	dlq := a.labs[lab].lab.Name("emails.dlq")
	conn, err := amqp.Dial("amqp://guest:guest@localhost:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", dlq, true, false, amqp.Publishing{Body: []byte("left over")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the left-over message in the DLQ", func() bool {
		q, err := ch.QueueDeclarePassive(dlq, true, false, false, false, nil)
		return err == nil && q.Messages > 0
	})

	page := dialLab(t, strings.Replace(url, "http", "ws", 1)+"/work-queue/ws")
	page.until(t, "the first snapshot", func(m labMsg) bool { return m.Type == "snapshot" })
	req, _ := http.NewRequest(http.MethodPost, url+"/work-queue/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset answered %s", resp.Status)
	}
	snap := page.until(t, "the snapshot of the reset", func(m labMsg) bool { return m.Type == "snapshot" })
	for _, c := range snap.Stats.Counters {
		if c.Value != 0 {
			t.Errorf("after the reset %s = %d, want 0", c.Name, c.Value)
		}
	}
	for name, v := range knobValues(sr.Knobs()) {
		if v != defaults[name] {
			t.Errorf("after the reset %s = %v, want its default %v", name, v, defaults[name])
		}
	}
	waitFor(t, "jobs published again", func() bool { return counterOf(sr.Stats(), "published") > 0 })
	q, err := ch.QueueDeclarePassive(dlq, true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("after the reset the DLQ holds %d messages (%v), want an empty, new DLQ", q.Messages, err)
	}

	out, err := exec.Command("rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name").Output()
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for name := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(name, "emails") && strings.HasSuffix(name, "."+lab) {
			held = append(held, name)
		}
	}
	if len(held) != 11 { // emails, the DLQ, nine retry queues
		t.Errorf("after the reset the broker holds %d queues of the work queue, want 11: %v", len(held), held)
	}
}

// Each page has the control; a reset from another site is refused, and a
// lab that is not there is named.
func TestResetRefusesForeignOriginsAndUnknownLabs(t *testing.T) {
	_, url := startServer(t, func(*App, string) {})
	if page := get(t, url+"/work-queue"); !strings.Contains(page, `data-testid="reset"`) {
		t.Error("the page has no reset control")
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/work-queue/reset", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a foreign reset answered %s, want 400", resp.Status)
	}
	resp, err = http.Post(url[:strings.LastIndex(url, "/")]+"/nosuchlab/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a reset of an unknown lab answered %s, want 404", resp.Status)
	}
}

// Over the websocket, "reset" takes no other field; alone, it starts the
// scenario over and the reply comes once it runs again, with every counter
// of the snapshot before it at zero and its traces gone.
func TestResetCommandOverTheSocket(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	lab := url[strings.LastIndex(url, "/")+1:]
	sr, _ := a.labs[lab].scenario("request-response")
	busy := func() bool {
		for _, c := range sr.Stats().Counters {
			if c.Value > 0 {
				return true
			}
		}
		return false
	}
	waitFor(t, "some traffic", busy)
	traced := ""
	for _, e := range sr.hub.Recent() {
		if e.MsgID != "" {
			traced = e.MsgID
		}
	}
	old, ok := a.labs[lab].lab.Traces.Get(traced)
	if !ok {
		t.Fatalf("no trace of message %q before the reset", traced)
	}
	page := dialLab(t, strings.Replace(url, "http", "ws", 1)+"/request-response/ws")
	page.until(t, "the first snapshot", func(m labMsg) bool { return m.Type == "snapshot" })

	if err := page.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"reset","knob":"rate"}`)); err != nil {
		t.Fatal(err)
	}
	var refused reply
	page.SetReadDeadline(time.Now().Add(15 * time.Second))
	for refused.Type != "reply" {
		if err := page.ReadJSON(&refused); err != nil {
			t.Fatal(err)
		}
	}
	if refused.OK || !strings.Contains(refused.Error, `"reset" takes nothing else`) {
		t.Errorf("a reset with a knob: %+v, want it refused as malformed", refused)
	}

	if err := page.WriteMessage(websocket.TextMessage, []byte(`{"id":2,"op":"reset"}`)); err != nil {
		t.Fatal(err)
	}
	snap := page.until(t, "the snapshot of the reset", func(m labMsg) bool { return m.Type == "snapshot" })
	for _, c := range snap.Stats.Counters {
		if c.Value != 0 {
			t.Errorf("after the reset %s = %d, want 0", c.Name, c.Value)
		}
	}
	if len(snap.Recent) > 0 {
		t.Errorf("the snapshot of the reset still logs %d events of before, the first %+v", len(snap.Recent), snap.Recent[0])
	}
	var done reply
	for done.Type != "reply" {
		if err := page.ReadJSON(&done); err != nil {
			t.Fatal(err)
		}
	}
	if !done.OK || done.ID != 2 {
		t.Errorf("reset reply %+v, want ok", done)
	}
	// The scenario numbers its messages afresh, so a new message may have
	// the old one's id: none of the old hops may be left.
	hops, _ := a.labs[lab].lab.Traces.Get(traced)
	for _, h := range hops {
		if h.Seq <= old[len(old)-1].Seq {
			t.Errorf("after the reset message %s still has hop %d of before", traced, h.Seq)
		}
	}
	waitFor(t, "traffic again", busy)
}

// A lab's reset starts every scenario of it over, and each runs again.
func TestLabResetStartsEveryScenarioOver(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	lab := url[strings.LastIndex(url, "/")+1:]
	resp, err := http.Post(url+"/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lab reset answered %s", resp.Status)
	}
	for _, s := range a.labs[lab].scenarios {
		if f := s.sup.Failed(); f != "" {
			t.Errorf("%s after the lab's reset: %s", s.Name(), f)
		}
	}
	sr, _ := a.labs[lab].scenario("request-response")
	waitFor(t, "request-response's traffic again", func() bool { return counterOf(sr.Stats(), "calls") > 0 })
}

// Request-response: each preset sets every knob it names, and a reset of the
// pattern or of the whole lab puts every knob back to its default, even with
// calls held by a product-service that never answers (they must end for the
// scenario to start over).
func TestRequestResponsePresetThenResetPutsEveryKnobBack(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	lab := url[strings.LastIndex(url, "/")+1:]
	sr, _ := a.labs[lab].scenario("request-response")
	defaults := knobValues(sr.Knobs())
	for i, p := range sr.Presets() {
		if r := sr.command(command{Op: "preset", Preset: p.Name}, "a test"); !r.(reply).OK {
			t.Fatalf("preset %s: %+v", p.Name, r)
		}
		got := knobValues(sr.Knobs())
		for knob, v := range p.Values {
			if got[knob] != v {
				t.Errorf("after preset %s: %s = %v, want %v", p.Name, knob, got[knob], v)
			}
		}
		for knob, v := range map[string]string{"hang": "true", "rate": "100", "latency_ms": "300", "unknown_ids": "20"} {
			if r := sr.command(command{Op: "set", Knob: knob, Value: json.RawMessage(v)}, "a test"); !r.(reply).OK {
				t.Fatalf("set %s: %+v", knob, r)
			}
		}
		waitFor(t, "calls held by the hang", func() bool { return counterOf(sr.Stats(), "blocked") > 0 })
		if i%2 == 0 { // the page's "Start this pattern over"
			if r := sr.command(command{Op: "reset"}, "a test"); !r.(reply).OK {
				t.Fatalf("reset after preset %s: %+v", p.Name, r)
			}
		} else { // "Reset lab"
			resp, err := http.Post(url+"/reset", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("lab reset after preset %s answered %s", p.Name, resp.Status)
			}
		}
		for name, v := range knobValues(sr.Knobs()) {
			if v != defaults[name] {
				t.Errorf("reset after preset %s: %s = %v, want its default %v", p.Name, name, v, defaults[name])
			}
		}
	}
}

// Every pattern: each preset sets every knob it names, and "Reset lab" puts
// every knob of the pattern back to its default.
func TestEveryPresetThenLabResetPutsEveryKnobBack(t *testing.T) {
	a, url := startServer(t, func(*App, string) {})
	lab := url[strings.LastIndex(url, "/")+1:]
	for _, s := range a.labs[lab].scenarios {
		defaults := knobValues(s.Knobs())
		for _, p := range s.Presets() {
			if r := s.command(command{Op: "preset", Preset: p.Name}, "a test"); !r.(reply).OK {
				t.Fatalf("%s: preset %s: %+v", s.Name(), p.Name, r)
			}
			got := knobValues(s.Knobs())
			for knob, v := range p.Values {
				if fmt.Sprint(got[knob]) != fmt.Sprint(v) {
					t.Errorf("%s: after preset %s: %s = %v, want %v", s.Name(), p.Name, knob, got[knob], v)
				}
			}
			resp, err := http.Post(url+"/reset", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: lab reset after preset %s answered %s", s.Name(), p.Name, resp.Status)
			}
			for name, v := range knobValues(s.Knobs()) {
				if fmt.Sprint(v) != fmt.Sprint(defaults[name]) {
					t.Errorf("%s: lab reset after preset %s: %s = %v, want its default %v", s.Name(), p.Name, name, v, defaults[name])
				}
			}
		}
	}
}
