package main

import (
	"encoding/json"
	"testing"

	"flowlab/flow"
	"flowlab/server/hub"
)

// A frame's stats, which the server appends by hand, are byte for byte what
// encoding/json makes of them after NoNulls: every scenario's own stats,
// brokers starting or not, a view with no edges, a failure, every knob.
func TestFrameStatsAreEncodingJSONs(t *testing.T) {
	l := mustOpenLab(t)
	brokers := [][]brokerState{nil, {
		{Name: "Kafka", OK: true, Where: "127.0.0.1:9092", Status: "embedded broker (kfake) answering"},
		{Name: "RabbitMQ", Starting: true, Where: "<local> & \"private\"", Status: "starting…\n"},
	}}
	for _, s := range l.scenarios {
		view := s.View()
		view.Edges = nil
		for _, m := range []frameStatsMsg{
			{Stats: s.Stats()},
			{Stats: s.Stats(), Brokers: brokers[1], View: &view, Drawing: 8, Failed: "panic in Stats: <boom>", Knobs: s.Knobs()},
			{Stats: flow.Stats{}, Brokers: brokers[0], View: &flow.View{}, Knobs: []flow.Knob{}},
		} {
			want, err := json.Marshal(hub.NoNulls(m))
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.AppendJSON([]byte("x"))
			if err != nil || string(got[1:]) != string(want) {
				t.Errorf("%s:\n got  %s (%v)\n want %s", s.Name(), got[1:], err, want)
			}
		}
	}
}
