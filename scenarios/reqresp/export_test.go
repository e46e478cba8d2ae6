package reqresp

import "time"

// RecentSince adds calls that ended at ends to a fresh ring of recent calls
// and returns the ends of those its since(t) finds, newest first.
func RecentSince(ends []time.Time, t time.Time) []time.Time {
	var w recentCalls
	for _, at := range ends {
		w.add(endedCall{at: at})
	}
	var out []time.Time
	for _, c := range w.since(t) {
		out = append(out, c.at)
	}
	return out
}
