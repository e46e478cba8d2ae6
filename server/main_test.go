package main

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestMain deletes what the tests' labs left on the shared RabbitMQ: every
// lab's scenarios declare durable queues and exchanges named after the lab,
// which outlive a test by design. First what killed test binaries left
// (a broker that piles up thousands of queues takes minutes to boot), last
// this binary's own.
func TestMain(m *testing.M) {
	deleteRabbitObjects(func(name string) bool {
		tag, ok := testTagOf(name)
		return ok && tag != testTag && !testBinaryRuns(tag)
	})
	code := m.Run()
	deleteRabbitObjects(ofTestLabs)
	os.Exit(code)
}

// testMark finds the tag of the test binary whose lab a broker name belongs
// to: at the end, a lab id labPrefix made (".t01234-7"); at the start, an
// instance name testTag made ("t01234a-").
var testMark = regexp.MustCompile(`^(t\d{5})[a-z]?-|\.(t\d{5})-[^.]*$`)

func testTagOf(name string) (string, bool) {
	m := testMark.FindStringSubmatch(name)
	if m == nil {
		return "", false
	}
	return m[1] + m[2], true
}

// ofTestLabs says whether a queue or exchange name is of a lab this test
// binary made.
func ofTestLabs(name string) bool {
	tag, ok := testTagOf(name)
	return ok && tag == testTag
}

// testBinaryRuns says whether a process whose pid has tag's number as its
// last five digits runs: it may be a test binary whose labs are in use.
func testBinaryRuns(tag string) bool {
	n, _ := strconv.Atoi(tag[1:])
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: keep
	}
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && pid%100000 == n {
			return true
		}
	}
	return false
}

func TestTestMarkFindsTheBinaryOfALabsNames(t *testing.T) {
	for name, want := range map[string]string{
		"emails.retry.3.t01234-7":       "t01234",
		"inventory.t01234-12":           "t01234",
		"t01234a-emails.abcdefgh":       "t01234",
		"t01234-emails.bench":           "t01234",
		"t01234x-ecommerce.dlx":         "t01234",
		"emails":                        "",
		"emails.retry.3":                "",
		"emails.abcdefgh":               "",
		"prod-emails.t01234-7x.more":    "",
		"emails.t01234-7.shadow-policy": "",
	} {
		got, ok := testTagOf(name)
		if got != want || ok != (want != "") {
			t.Errorf("testTagOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}
