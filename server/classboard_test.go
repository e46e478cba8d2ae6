package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The board page answers only to the instructor, names the class it was
// asked for (in any case) and offers every shipped walkthrough; an unknown
// code is a 404 page. Its board.json marks the act step whose button
// "trigger the fault now" fires, and no other.
func TestClassBoardPageIsTheInstructors(t *testing.T) {
	a, origin := startClassServer(t)
	teacher := instructorOf(t, a, origin)
	code := teacher.newClass("exclusive-vs-durable")
	ada := newClient(t, origin)
	ada.join(code, "Ada")

	resp := teacher.do(http.MethodGet, "/classes/"+strings.ToLower(code)+"/board", "", "")
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-code="`+code+`"`) || !strings.Contains(page, "/static/board.js") {
		t.Fatalf("the instructor's board: %d\n%s", resp.StatusCode, page)
	}
	for _, wk := range a.walkOrder {
		if !strings.Contains(page, `<option value="`+wk.ID+`">`) {
			t.Errorf("the board offers no switch to %s", wk.ID)
		}
	}
	for name, c := range map[string]*classClient{"no cookie": newClient(t, origin), "a learner": ada} {
		if resp := c.do(http.MethodGet, "/classes/"+code+"/board", "", ""); !forbidden(t, resp, false) {
			t.Errorf("%s: the board %d, want the 403 page", name, resp.StatusCode)
		}
	}
	if resp := teacher.do(http.MethodGet, "/classes/ZZZZZZ/board", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown class's board: %d, want 404", resp.StatusCode)
	}

	_, b := teacher.board(code)
	for i, s := range b.Walk.Steps {
		if want := a.walks["exclusive-vs-durable"].Steps[i].HasButton(); s.Button != want {
			t.Errorf("step %d (%s %q): button %v, want %v", i, s.Kind, s.Title, s.Button, want)
		}
		if s.Button && s.Kind != "act" {
			t.Errorf("step %d is a %s with a button", i, s.Kind)
		}
	}
}
