package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"flowlab/flow"
)

// BenchmarkFrame is the hub's part of a watched scenario at 20 messages a
// second, once per op: six hops emitted, the stats built and changed (a
// broker's status moves), and the frame made and sent to one websocket
// client, which reads it and throws it away before the next. Each real scenario is opened,
// not run, so its stats are those of every node and fact it has, and
// nothing else uses the CPU. One op is one frame, ten a second per watched
// scenario; ns/op is the flush alone, cpu-µs/frame the whole process's CPU
// (the client's reading and the hub's writer included).
//
//	go test -run '^$' -bench Frame ./server/
func BenchmarkFrame(b *testing.B) {
	a := &App{
		cfg:     Config{ProductAddr: "127.0.0.1:0", AMQPURL: defaultAMQPURL()},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		brokers: &brokerWatch{kafkaAddrs: []string{"127.0.0.1:1"}},
	}
	l, err := a.openLab("k"+strconv.Itoa(int(time.Now().UnixNano()%1e9)), false)
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	states := [2][]brokerState{}
	for i := range states {
		states[i] = []brokerState{
			{Name: "Kafka", OK: true, Where: "127.0.0.1:9092", Status: "embedded broker (kfake) answering " + strconv.Itoa(i)},
			{Name: "RabbitMQ", OK: true, Where: "127.0.0.1:5672", Status: "answering"},
		}
	}
	for _, s := range l.scenarios[:4] {
		b.Run("scenario="+s.Name(), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, err := upgrader.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				s.hub.Serve(conn, func([]byte) any { return map[string]string{"type": "reply"} })
			}))
			defer srv.Close()
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), http.Header{"Origin": {srv.URL}})
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			// The client says when it has read each message, and each op waits
			// for its frame: flushed faster than it is read, frames would pile
			// up and the client get snapshots instead, which a watched
			// scenario at ten frames a second never needs.
			got := make(chan struct{}, 1)
			reading := make(chan struct{})
			go func() {
				defer close(reading)
				for {
					_, r, err := conn.NextReader()
					if err != nil {
						return
					}
					io.Copy(io.Discard, r)
					got <- struct{}{}
				}
			}()
			<-got // the snapshot
			for s.hub.Clients() != 1 {
				time.Sleep(time.Millisecond)
			}
			hops := frameHops(s.lab.ID, s.Name())
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			i := 0
			for b.Loop() {
				for _, e := range hops {
					s.hub.Emit(e)
				}
				a.brokers.mu.Lock()
				a.brokers.states = states[i%2]
				a.brokers.mu.Unlock()
				s.hub.Flush()
				<-got
				i++
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/float64(i), "cpu-µs/frame")
			conn.Close()
			<-reading
		})
	}
}

// frameHops are 100 ms of a pattern at 20 messages a second: two messages'
// hops, three each.
func frameHops(lab, scenario string) []flow.Event {
	now := time.Now()
	var hops []flow.Event
	for m := range 2 {
		id := "req-" + strconv.Itoa(m)
		hops = append(hops,
			flow.Event{Kind: flow.KindPublish, From: "order-service", To: "orders", MsgID: id, Attempt: 1,
				Detail: flow.Detail{Payload: `{"order_id": 1234, "product_id": 123, "quantity": 1}`}},
			flow.Event{Kind: flow.KindDeliver, From: "orders", To: "inventory", MsgID: id, Attempt: 1,
				Detail: flow.Detail{Queue: "orders.inventory", LatencyMS: 1.25}},
			flow.Event{Kind: flow.KindAck, From: "inventory", To: "orders", MsgID: id, Attempt: 1,
				Detail: flow.Detail{Outcome: "ok", LatencyMS: 0.375}})
	}
	for i := range hops {
		hops[i].Seq, hops[i].Time, hops[i].Lab, hops[i].Scenario = uint64(i+1), now.Add(time.Duration(i)*time.Millisecond), lab, scenario
	}
	return hops
}
