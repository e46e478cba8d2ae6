package asyncmsg_test

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The watch that tells the view when a service's state word changes looks
// only at the services, not at every node: it must see every service node
// (order-service, the outside clients, each member) and see it as the
// page's node shows it.
func TestWatchSeesEveryServiceAsItsNode(t *testing.T) {
	l := startLab(t, nil)
	eventually(t, 15*time.Second, "three members drawn", func() bool {
		n := 0
		for id := range l.s.NodeStatesAt(time.Now()) {
			if strings.HasPrefix(id, "m") {
				n++
			}
		}
		return n == 3
	})
	// A member's state may change between the two looks: ask again.
	var diff string
	for range 20 {
		now := time.Now()
		svc, all := l.s.ServiceStatesAt(now), l.s.NodeStatesAt(now)
		var want []string
		for id := range all {
			if id == "order-service" || id == "outside-client" || strings.HasPrefix(id, "m") {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(svc)); !slices.Equal(got, want) {
			t.Fatalf("the watch sees nodes %v, the services' nodes are %v", got, want)
		}
		diff = ""
		for id, st := range svc {
			if !reflect.DeepEqual(st, all[id]) {
				diff = id
			}
		}
		if diff == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the watch's state of %s differs from its node's", diff)
}
