package hub

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"flowlab/flow"
)

// What goes into every frame of every watched scenario, ten times a second,
// is appended here by hand: the same bytes as json.Marshal(NoNulls(v)) (the
// tests compare the two), without reflection, NoNulls' look at every field,
// or a buffer per value. encoding/json was most of a frame's cost.

// Appender is a frame's stats that append their own JSON, a JSON object, to
// dst: the bytes json.Marshal(NoNulls(v)) makes of them. Stats that are not
// an Appender are encoded with encoding/json.
type Appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// AppendStats appends st as json.Marshal(NoNulls(st)) writes it.
func AppendStats(dst []byte, st flow.Stats) ([]byte, error) {
	var err error
	dst = append(dst, `{"nodes":{`...)
	var idBuf [32]string // on the stack for any scenario's nodes
	ids := idBuf[:0]
	for id := range st.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids) // encoding/json sorts a map's keys
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, id)
		ns := st.Nodes[id]
		dst = append(dst, `:{"state":`...)
		dst = AppendString(dst, ns.State)
		dst = append(dst, `,"facts":[`...)
		for j, f := range ns.Facts {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = AppendString(dst, f.Name)
			dst = append(dst, `,"value":`...)
			if dst, err = AppendValue(dst, f.Value); err != nil {
				return dst, err
			}
			if f.Badge != "" {
				dst = append(dst, `,"badge":`...)
				dst = AppendString(dst, f.Badge)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	dst = append(dst, `},"counters":`...)
	dst = appendCounters(dst, st.Counters)
	dst = append(dst, `,"ledger":{"total":`...)
	dst = appendCounter(dst, st.Ledger.Total)
	dst = append(dst, `,"parts":`...)
	dst = appendCounters(dst, st.Ledger.Parts)
	if st.Ledger.Duplicates != nil {
		dst = append(dst, `,"duplicates":`...)
		dst = appendCounter(dst, *st.Ledger.Duplicates)
	}
	p := st.Series
	dst = append(dst, `},"series":{"t":`...)
	if dst, err = appendTime(dst, p.Time); err != nil {
		return dst, err
	}
	for _, f := range [...]struct {
		name string
		v    float64
	}{{`,"throughput":`, p.Throughput}, {`,"success":`, p.Success}, {`,"p50":`, p.P50MS}, {`,"p99":`, p.P99MS}} {
		dst = append(dst, f.name...)
		if dst, err = appendFloat(dst, f.v); err != nil {
			return dst, err
		}
	}
	if p.Depth != 0 {
		dst = append(dst, `,"depth":`...)
		if dst, err = appendFloat(dst, p.Depth); err != nil {
			return dst, err
		}
	}
	return append(dst, "}}"...), nil
}

func appendCounters(dst []byte, cs []flow.Counter) []byte {
	dst = append(dst, '[')
	for i, c := range cs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCounter(dst, c)
	}
	return append(dst, ']')
}

func appendCounter(dst []byte, c flow.Counter) []byte {
	dst = append(dst, `{"name":`...)
	dst = AppendString(dst, c.Name)
	dst = append(dst, `,"label":`...)
	dst = AppendString(dst, c.Label)
	dst = append(dst, `,"value":`...)
	dst = strconv.AppendInt(dst, c.Value, 10)
	return append(dst, '}')
}

// appendEvent appends e as json.Marshal writes it.
func appendEvent(dst []byte, e *flow.Event) ([]byte, error) {
	var err error
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"t":`...)
	if dst, err = appendTime(dst, e.Time); err != nil {
		return dst, err
	}
	dst = append(dst, `,"lab":`...)
	dst = AppendString(dst, e.Lab)
	dst = append(dst, `,"scenario":`...)
	dst = AppendString(dst, e.Scenario)
	dst = append(dst, `,"kind":`...)
	dst = AppendString(dst, string(e.Kind))
	dst = appendOptString(dst, `,"from":`, e.From)
	dst = appendOptString(dst, `,"to":`, e.To)
	dst = appendOptString(dst, `,"msg":`, e.MsgID)
	if e.Attempt != 0 {
		dst = append(dst, `,"attempt":`...)
		dst = strconv.AppendInt(dst, int64(e.Attempt), 10)
	}
	d := &e.Detail
	if d.Value == nil && *d == (flow.Detail{}) {
		return append(dst, '}'), nil // omitzero
	}
	dst = append(dst, `,"detail":{`...)
	n := len(dst)
	if d.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(d.Status), 10)
	}
	if d.LatencyMS != 0 {
		dst = append(dst, `,"latencyMs":`...)
		if dst, err = appendFloat(dst, d.LatencyMS); err != nil {
			return dst, err
		}
	}
	if d.DelayMS != 0 {
		dst = append(dst, `,"delayMs":`...)
		if dst, err = appendFloat(dst, d.DelayMS); err != nil {
			return dst, err
		}
	}
	dst = appendOptString(dst, `,"outcome":`, d.Outcome)
	dst = appendOptString(dst, `,"error":`, d.Error)
	dst = appendOptString(dst, `,"node":`, d.Node)
	dst = appendOptString(dst, `,"state":`, d.State)
	dst = appendOptString(dst, `,"knob":`, d.Knob)
	if d.Value != nil {
		dst = append(dst, `,"value":`...)
		if dst, err = AppendValue(dst, d.Value); err != nil {
			return dst, err
		}
	}
	dst = appendOptString(dst, `,"queue":`, d.Queue)
	if d.Partition != 0 {
		dst = append(dst, `,"partition":`...)
		dst = strconv.AppendInt(dst, int64(d.Partition), 10)
	}
	if d.Offset != 0 {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, d.Offset, 10)
	}
	dst = appendOptString(dst, `,"key":`, d.Key)
	dst = appendOptString(dst, `,"payload":`, d.Payload)
	dst = appendOptBool(dst, `,"raw":true`, d.Raw)
	dst = appendOptBool(dst, `,"external":true`, d.External)
	dst = appendOptBool(dst, `,"redeliver":true`, d.Redeliver)
	dst = appendOptBool(dst, `,"duplicate":true`, d.Duplicate)
	if len(dst) > n {
		dst = append(dst[:n], dst[n+1:]...) // the first field's comma
	}
	return append(dst, "}}"...), nil
}

func appendOptString(dst []byte, field, s string) []byte {
	if s == "" {
		return dst
	}
	return AppendString(append(dst, field...), s)
}

func appendOptBool(dst []byte, field string, b bool) []byte {
	if !b {
		return dst
	}
	return append(dst, field...)
}

// AppendValue appends v, a fact's or a knob's value, as
// json.Marshal(NoNulls(v)) writes it: the usual types by hand, any other
// through encoding/json.
func AppendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case float64:
		return appendFloat(dst, v)
	case string:
		return AppendString(dst, v), nil
	case []int:
		dst = append(dst, '[')
		for i, n := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(n), 10)
		}
		return append(dst, ']'), nil
	}
	b, err := json.Marshal(NoNulls(v))
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendTime appends t as time.Time's MarshalJSON writes it, which refuses
// years outside 0–9999.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, errors.New("Time.MarshalJSON: year outside of range [0,9999]")
	}
	if _, off := t.Zone(); off <= -24*60*60 || off >= 24*60*60 {
		return dst, errors.New("Time.MarshalJSON: timezone hour outside of range [0,23]")
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendFloat appends f as encoding/json writes a float64, which refuses NaN
// and the infinities.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string as encoding/json writes it: <, >
// and & escaped for HTML, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
