package flow

import (
	"errors"
	"fmt"
)

// ErrorKind says what sort of failure an error is, so that one table can map
// it to an HTTP status and a websocket reply.
type ErrorKind string

const (
	Invalid     ErrorKind = "invalid"     // the input is wrong; nothing was changed
	NotFound    ErrorKind = "not-found"   // no such lab, scenario, knob or message
	Forbidden   ErrorKind = "forbidden"   // the asker may watch but not change this
	Unavailable ErrorKind = "unavailable" // a broker or service cannot be reached now
	Internal    ErrorKind = "internal"    // a bug or an unexpected failure
)

// Error is an error meant for a person: Message is safe to show in the page.
type Error struct {
	Kind    ErrorKind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error of the given kind.
func Errorf(kind ErrorKind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, Internal for errors that carry none.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// MessageOf returns what may be shown to a person about err: its own message
// for an *Error, a generic sentence otherwise, since internal details are logged,
// never shown.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
