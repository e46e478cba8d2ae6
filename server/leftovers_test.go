package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A flowlab that is killed never tears its sandboxes down. The next start
// of the same instance deletes what they left on RabbitMQ, and forgets them.
func TestNextStartDeletesWhatAKilledRunsSandboxesLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.db")
	instance := []string{"-instance", testTag + "k"}
	s := startProgressServer(t, path, instance...)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/labs", nil)
	req.Header.Set("Origin", s.url)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := regexp.MustCompile(`^/labs/([a-z0-9-]+)/`).FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /labs: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	id := m[1]
	page, err := http.Get(s.url + "/labs/" + id + "/work-queue") // opens it: its scenario declares its queues
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	queue := testTag + "k-emails." + strings.TrimPrefix(id, testTag+"k-")
	waitFor(t, "the sandbox's queue "+queue+" declared", func() bool { return queueExists(t, queue) })
	if ids, _ := s.app.learners.Sandboxes(testTag + "k"); !slices.Contains(ids, id) {
		t.Fatalf("the open sandbox %s is not recorded: %v", id, ids)
	}

	// As a kill leaves it: the sandbox's runs end, and nothing tears it down.
	l, _ := s.app.lab(id)
	l.end()
	s.app.removeLab(id)
	s.stop()
	if !queueExists(t, queue) {
		t.Fatal("the kill's stand-in tore the sandbox down: this test would prove nothing")
	}

	s = startProgressServer(t, path, instance...)
	waitFor(t, "the next start deleted "+queue, func() bool { return !queueExists(t, queue) })
	waitFor(t, "the next start forgot the sandbox", func() bool {
		ids, err := s.app.learners.Sandboxes(testTag + "k")
		return err == nil && len(ids) == 0
	})
}
