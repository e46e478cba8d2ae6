package asyncmsg_test

import (
	"errors"
	"testing"
	"time"

	"flowlab/flow"
)

// The article's Kafka example has no consumer: "Crash every member" leaves
// the group with none, and what is produced meanwhile waits in the log.
func TestCrashEveryMemberLeavesRecordsInTheLog(t *testing.T) {
	l := startLab(t, map[string]any{"rate": 100, "flush-each": false, "session-timeout": 1})
	l.waitStable()
	mustSet(t, l.s, "crash-all", nil)
	for _, id := range []string{"m1", "m2", "m3"} {
		if st := l.node(id).State; st != "crashed" {
			t.Errorf("%s is %q after crash-all, want crashed", id, st)
		}
	}
	processed := l.part("processed")
	eventually(t, 20*time.Second, "records waiting in the log", func() bool { return l.part("in-log") >= 50 })
	if got := l.part("processed"); got != processed {
		t.Errorf("processed moved %d → %d with no member running", processed, got)
	}
	var fe *flow.Error
	if err := l.s.Set("crash-all", nil); !errors.As(err, &fe) || fe.Kind != flow.Invalid {
		t.Errorf("crash-all with every member crashed = %v, want Invalid", err)
	}
}
