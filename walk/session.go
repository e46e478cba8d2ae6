package walk

import (
	"context"
	"errors"
)

// Action is what a learner asks of a session.
//
// Op is one of:
//   - "answer": answer the predict step Step with Choice (once: it locks);
//   - "act": run the commands of the act step Step (its button);
//   - "show": send the "Show me" commands of the check or do-it-yourself act
//     step Step, which marks it assisted;
//   - "reset-step": reset the scenario, run the walk's setup, and go back to
//     the nearest act at or before the current step;
//   - "go": move to step Step.
type Action struct {
	Op     string `json:"op"`
	Step   int    `json:"step"`
	Choice string `json:"choice"`
}

// SessionState is what the page shows of a session.
type SessionState struct {
	Walk    string `json:"walk"`
	Title   string `json:"title"`
	Pattern string `json:"pattern"`
	// Lab is the lab's id; the engine does not know it, the server fills it.
	Lab      string      `json:"lab"`
	Step     int         `json:"step"`     // the current step
	Furthest int         `json:"furthest"` // the furthest step reached
	Running  bool        `json:"running"`  // commands are being sent
	Steps    []StepState `json:"steps"`
}

// StepState is one step as the page shows it.
type StepState struct {
	Kind  string   `json:"kind"`
	Title string   `json:"title"`
	HTML  string   `json:"html"` // rendered when the step is shown; "" before it is reached
	Nodes []string `json:"nodes,omitempty"`
	Done  bool     `json:"done"`
	Error string   `json:"error,omitempty"` // why its commands failed

	// predict
	Choices   []ChoiceState `json:"choices,omitempty"`
	Answer    string        `json:"answer,omitempty"`
	Predicted string        `json:"predicted,omitempty"` // the answer's text
	Measured  string        `json:"measured,omitempty"`  // once judged
	Correct   *bool         `json:"correct,omitempty"`   // once judged

	// act: Button when it has commands to send; check or do-it-yourself act:
	// ShowMe when "Show me" has commands to send.
	Button bool `json:"button,omitempty"`
	ShowMe bool `json:"show,omitempty"`

	// check
	Status   string `json:"status,omitempty"` // waiting, passed or not-yet
	LeftMS   int64  `json:"left_ms,omitempty"`
	Hint     string `json:"hint,omitempty"` // only when not-yet
	Assisted bool   `json:"assisted,omitempty"`
}

// ChoiceState is one choice of a predict step.
type ChoiceState struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// Session is one learner going through one walk in one lab. It is safe for
// concurrent use; commands run on its own goroutine.
type Session struct{}

// Start resets the lab's scenario, runs the walk's setup commands and returns
// a session on the first step.
func Start(ctx context.Context, w *Walk, lab Lab) (*Session, error) {
	return nil, errors.New("not yet")
}

// State is the session now.
func (s *Session) State() SessionState { return SessionState{} }

// Do performs a learner's action and returns the state after it. A bad
// action is refused with a flow.Invalid error and changes nothing.
func (s *Session) Do(ctx context.Context, a Action) (SessionState, error) {
	return SessionState{}, errors.New("not yet")
}

// Close stops the session's goroutines and waits for them; commands being
// sent are cancelled.
func (s *Session) Close() {}
