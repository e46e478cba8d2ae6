package asyncmsg

import (
	"strings"
	"time"

	"flowlab/flow"
)

// nodeOutside stands for every client that is not flowlab's, named as in the
// other patterns.
const nodeOutside = "outside-client"

// View draws order-service on the left, the topic's partitions as lanes in
// the middle and the group's running members on the right; a member with no
// partition to hold is drawn idle. Edges from partitions to members follow
// the current assignment, a crashed member's included until the group
// notices.
func (s *Scenario) View() flow.View {
	s.mu.Lock()
	n := s.set.partitions
	session := time.Duration(s.set.sessionTimeout) * time.Second
	brokers := strings.Join(s.cfg.Brokers, ", ")
	members := s.members
	s.mu.Unlock()

	// Partitions and running members stand in cards 96 apart, side by side,
	// with room on the right for a member's counts in the thousands; slots
	// not started are left out. The canvas grows with the longer of
	// the two stacks; at three it is sized to be read at 1280×720.
	running := 0
	for _, m := range members {
		if m != nil {
			running++
		}
	}
	top := 225.0
	rows := float64(max(n, running, 1))
	height := max(520, top+96*rows-20)
	v := flow.View{Width: 1150, Height: height, Nodes: []flow.Node{
		{ID: "order-service", Label: "order-service", Kind: "service", X: 140, Y: top + 48*(rows-1), Note: "producer"},
		{ID: nodeOutside, Label: "outside clients", Kind: "client", X: 140, Y: 85, Note: "kcat, confluent_kafka… on " + brokers},
		{ID: "orders", Label: s.topic, Kind: "topic", X: 460, Y: 85, Note: "topic on " + brokers},
		{ID: "inventory", Label: s.group, Kind: "service", X: 890, Y: 85, Note: "consumer group"},
	}}
	for p := range int32(n) {
		id := partitionID(p)
		v.Nodes = append(v.Nodes, flow.Node{ID: id, Label: id, Kind: "partition", X: 460, Y: top + 96*float64(p)})
		v.Edges = append(v.Edges, flow.Edge{From: "order-service", To: id})
	}
	v.Edges = append(v.Edges, flow.Edge{From: nodeOutside, To: "orders", Label: "any Kafka client"})
	k := 0
	for i, m := range members {
		if m == nil {
			continue
		}
		id := memberID(i)
		v.Nodes = append(v.Nodes, flow.Node{ID: id, Label: id, Kind: "member", X: 830, Y: top + 96*float64(k)})
		k++
		// A crashed member still holds its partitions until its session
		// times out: the edge stays, and shows who is keeping them idle.
		if at := m.crashTime(); m.isCrashed() && !time.Now().Before(at.Add(session)) {
			continue
		}
		for _, p := range m.ownedList() {
			if int(p) < n {
				v.Edges = append(v.Edges, flow.Edge{From: partitionID(p), To: id})
			}
		}
	}
	return v
}
