package hub

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"
)

// Version is the protocol's major version, sent as "v" in every message to a
// browser (docs/PROTOCOL.md). A page refuses a version it does not know.
const Version = 2

// noSeq marks a message outside the hub's stream: a reply to one client.
const noSeq = ^uint64(0)

// envelope marshals v, a JSON object, with the protocol version, the server
// time in unix milliseconds and, unless seq is noSeq (a reply), its place in
// the hub's stream put first. Nil slices and maps inside v are sent as [] and {}: a program
// reading the stream never meets a null list.
func envelope(v any, seq uint64, at time.Time) ([]byte, error) {
	body, err := json.Marshal(NoNulls(v))
	if err != nil {
		return nil, err
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("a message must be a JSON object, not %.20s", body)
	}
	head := make([]byte, 0, len(body)+48)
	head = append(head, `{"v":`...)
	head = strconv.AppendInt(head, Version, 10)
	if seq != noSeq {
		head = append(head, `,"seq":`...)
		head = strconv.AppendUint(head, seq, 10)
	}
	head = append(head, `,"time":`...)
	head = strconv.AppendInt(head, at.UnixMilli(), 10)
	if string(body) != "{}" {
		head = append(head, ',')
	}
	return append(head, body[1:]...), nil
}

// NoNulls returns v with every nil slice and nil map in it, at any depth,
// made empty, so that it encodes as [] or {} rather than null. What it
// changes it copies: v and whatever it shares with others stay as they were.
// Nil pointers and interfaces stay nil (a knob without a value is null).
func NoNulls(v any) any {
	if v == nil {
		return nil
	}
	rv, changed := fill(reflect.ValueOf(v))
	if !changed {
		return v
	}
	return rv.Interface()
}

// fill returns v with its nil slices and maps made empty, and whether it had
// any; when it had none, v itself comes back and nothing is copied.
func fill(v reflect.Value) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return v, false // []byte encodes as a string, and RawMessage as itself
			}
			return reflect.MakeSlice(v.Type(), 0, 0), true
		}
		if !mayHoldNil(v.Type().Elem()) {
			return v, false
		}
		var out reflect.Value
		for i := range v.Len() {
			e, changed := fill(v.Index(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
				reflect.Copy(out, v)
			}
			out.Index(i).Set(e)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	case reflect.Map:
		if v.IsNil() {
			return reflect.MakeMap(v.Type()), true
		}
		if !mayHoldNil(v.Type().Elem()) {
			return v, false
		}
		var out reflect.Value
		for it := v.MapRange(); it.Next(); {
			if _, changed := fill(it.Value()); changed {
				out = reflect.MakeMapWithSize(v.Type(), v.Len())
				break
			}
		}
		if !out.IsValid() {
			return v, false
		}
		for it := v.MapRange(); it.Next(); {
			e, _ := fill(it.Value())
			out.SetMapIndex(it.Key(), e)
		}
		return out, true
	case reflect.Pointer:
		if v.IsNil() || !mayHoldNil(v.Type().Elem()) {
			return v, false
		}
		e, changed := fill(v.Elem())
		if !changed {
			return v, false
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(e)
		return p, true
	case reflect.Interface:
		if v.IsNil() {
			return v, false
		}
		e, changed := fill(v.Elem())
		if !changed {
			return v, false
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(e)
		return out, true
	case reflect.Struct:
		var out reflect.Value
		for _, i := range nilFields(v.Type()) {
			f, changed := fill(v.Field(i))
			if !changed {
				continue
			}
			if !out.IsValid() {
				out = reflect.New(v.Type()).Elem()
				out.Set(v)
			}
			out.Field(i).Set(f)
		}
		if out.IsValid() {
			return out, true
		}
		return v, false
	}
	return v, false
}

// mayHoldNil says whether a value of type t can hold a nil slice or map,
// so that fill skips, say, a list of plain events without looking at each.
func mayHoldNil(t reflect.Type) bool {
	if v, ok := holdsNil.Load(t); ok {
		return v.(bool)
	}
	v := mayHold(t, map[reflect.Type]bool{})
	holdsNil.Store(t, v)
	return v
}

// holdsNil caches mayHoldNil by type: frames ask it about the same few types
// ten times a second.
var holdsNil sync.Map

// nilFields are the indexes of struct type t's exported fields that may hold
// a nil slice or map (json skips the others, and the rest need no look),
// cached by type: asking reflect for a field's type and name each time
// was most of a frame's NoNulls.
func nilFields(t reflect.Type) []int {
	if v, ok := fieldsOf.Load(t); ok {
		return v.([]int)
	}
	var idx []int
	if mayHoldNil(t) {
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && mayHoldNil(f.Type) {
				idx = append(idx, i)
			}
		}
	}
	fieldsOf.Store(t, idx)
	return idx
}

var fieldsOf sync.Map

func mayHold(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a cycle: whatever it holds is judged where it began
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Array:
		return mayHold(t.Elem(), seen)
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return false
		}
		for i := range t.NumField() {
			if t.Field(i).IsExported() && mayHold(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}
