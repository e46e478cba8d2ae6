package web_test

import (
	"testing"

	"flowlab/web"
)

func TestWalksAreGroupedByPatternAndSayHowFarTheLearnerGot(t *testing.T) {
	walks := []web.StartWalk{
		{ID: "a", Pattern: "async-messaging", Steps: 7},
		{ID: "b", Pattern: "request-response", Steps: 7, Started: true, Done: 3},
		{ID: "c", Pattern: "request-response", Steps: 5, Started: true, Done: 5, Finished: true},
		{ID: "d", Pattern: "no-such-pattern"},
	}
	groups := web.GroupWalks(walks, map[string]string{"request-response": "HTTP", "async-messaging": "Kafka", "work-queue": "Work queue"}, patterns)
	if len(groups) != 2 || groups[0].Title != "HTTP" || len(groups[0].Walks) != 2 || groups[0].Walks[0].ID != "b" || groups[1].Title != "Kafka" {
		t.Fatalf("groups %+v: want HTTP (b, c) then Kafka (a), no empty group, no unknown pattern", groups)
	}
	for _, c := range []struct {
		w    web.StartWalk
		want string
	}{{walks[0], ""}, {walks[1], "3 of 7 steps"}, {walks[2], ""}} {
		if got := c.w.Progress(); got != c.want {
			t.Errorf("%s: %q, want %q", c.w.ID, got, c.want)
		}
	}
}
