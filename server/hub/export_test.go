package hub

// AppendEvent lets the tests compare a frame's events with encoding/json's.
var AppendEvent = appendEvent
