package engine

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of r to dst and returns the extended
// buffer. The bytes are exactly those encoding/json writes for r with HTML
// escaping off (a json.Encoder after SetEscapeHTML(false), less its
// newline), written without reflection. A nil r is null.
//
// Values in Lead, Captured and Appended of the types JSON decoding yields
// (string, float64, bool, nil, json.Number, map[string]any, []any) and int
// and int64 are written directly; any other value is handed to
// encoding/json. On an error (a NaN or infinite number, an invalid
// json.Number, a value encoding/json cannot marshal) AppendJSON returns dst
// as it was and encoding/json's error for that value.
func (r *Result) AppendJSON(dst []byte) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	b, err := appendResult(dst, r)
	if err != nil {
		return dst, err
	}
	return b, nil
}

// MarshalJSON encodes r as AppendJSON does. json.Marshal escapes HTML in
// it as in any value, so its output is what it was without this method.
func (r Result) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 1024))
}

// AppendJSON appends the JSON encoding of s to dst as Result.AppendJSON
// does, and returns the extended buffer; on an error, dst as it was.
func (s *StepResult) AppendJSON(dst []byte) ([]byte, error) {
	if s == nil {
		return append(dst, "null"...), nil
	}
	b, err := appendStep(dst, s)
	if err != nil {
		return dst, err
	}
	return b, nil
}

// MarshalJSON encodes s as AppendJSON does.
func (s StepResult) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(make([]byte, 0, 256))
}

// appendResult writes r's fields in declaration order, as their tags say.
func appendResult(b []byte, r *Result) ([]byte, error) {
	b = append(b, `{"outcome":`...)
	b = appendJSONString(b, string(r.Outcome))
	if r.Reason != "" {
		b = appendJSONString(append(b, `,"reason":`...), r.Reason)
	}
	if r.Step != "" {
		b = appendJSONString(append(b, `,"step":`...), r.Step)
	}
	b = appendMillis(append(b, `,"duration_ms":`...), r.Duration)
	b = append(b, `,"steps":`...)
	if r.Steps == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Steps {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendStep(b, &r.Steps[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	var err error
	if b, err = appendJSONMap(append(b, `,"lead":`...), r.Lead, 0); err != nil {
		return nil, err
	}
	if r.Class != "" {
		b = appendJSONString(append(b, `,"class":`...), string(r.Class))
	}
	return append(b, '}'), nil
}

// appendStep writes s's fields in declaration order, as their tags say.
func appendStep(b []byte, s *StepResult) ([]byte, error) {
	var err error
	b = appendJSONString(append(b, `{"name":`...), s.Name)
	b = appendJSONString(append(b, `,"outcome":`...), string(s.Outcome))
	if s.Reason != "" {
		b = appendJSONString(append(b, `,"reason":`...), s.Reason)
	}
	if s.Method != "" {
		b = appendJSONString(append(b, `,"method":`...), s.Method)
	}
	if s.URL != "" {
		b = appendJSONString(append(b, `,"url":`...), s.URL)
	}
	if s.Status != 0 {
		b = strconv.AppendInt(append(b, `,"status":`...), int64(s.Status), 10)
	}
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(s.Attempts), 10)
	b = appendMillis(append(b, `,"duration_ms":`...), s.Duration)
	if len(s.Captured) > 0 {
		if b, err = appendJSONMap(append(b, `,"captured":`...), s.Captured, 0); err != nil {
			return nil, err
		}
	}
	if s.Fallback != "" {
		b = appendJSONString(append(b, `,"fallback":`...), s.Fallback)
	}
	if len(s.Tried) > 0 {
		b = appendStrings(append(b, `,"tried":`...), s.Tried)
	}
	if s.Variant != 0 {
		b = strconv.AppendInt(append(b, `,"variant":`...), int64(s.Variant), 10)
	}
	if s.Timeout != 0 {
		b = appendMillis(append(b, `,"timeout_ms":`...), s.Timeout)
	}
	if s.Rule != "" {
		b = appendJSONString(append(b, `,"rule":`...), s.Rule)
	}
	if s.Waited != 0 {
		b = appendMillis(append(b, `,"waited_ms":`...), s.Waited)
	}
	if s.Cache != "" {
		b = appendJSONString(append(b, `,"cache":`...), s.Cache)
	}
	if s.Batch != "" {
		b = appendJSONString(append(b, `,"batch":`...), s.Batch)
	}
	if s.Group != "" {
		b = appendJSONString(append(b, `,"group":`...), s.Group)
	}
	if len(s.Appended) > 0 {
		if b, err = appendJSONMap(append(b, `,"appended":`...), s.Appended, 0); err != nil {
			return nil, err
		}
	}
	if len(s.Notes) > 0 {
		b = appendStrings(append(b, `,"notes":`...), s.Notes)
	}
	if s.Class != "" {
		b = appendJSONString(append(b, `,"class":`...), string(s.Class))
	}
	return append(b, '}'), nil
}

// appendStrings writes a list of strings.
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, t := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, ']')
}

// appendMillis writes d as Duration.MarshalJSON does.
func appendMillis(b []byte, d Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/1e6, 'f', 3, 64)
}

// maxJSONDepth is how deep appendJSONValue nests before it hands a value
// to encoding/json, which detects cycles (a map holding itself) where a
// plain recursion would never end.
const maxJSONDepth = 1000

// appendJSONValue writes v as encoding/json does with HTML escaping off.
func appendJSONValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return appendJSONFloat(b, v), nil
		}
	case json.Number:
		s := string(v)
		if s == "" {
			s = "0" // as encoding/json writes the zero Number
		}
		if validJSONNumber(s) {
			return append(b, s...), nil
		}
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case map[string]any:
		if depth < maxJSONDepth {
			return appendJSONMap(b, v, depth+1)
		}
	case []any:
		if depth < maxJSONDepth {
			return appendJSONArray(b, v, depth+1)
		}
	}
	// anything else, and the errors, are encoding/json's
	out, err := marshalJSON(v)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// appendJSONMap writes m with its keys sorted, as encoding/json does.
func appendJSONMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendJSONString(b, k), ':')
		var err error
		if b, err = appendJSONValue(b, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendJSONArray(b []byte, a []any, depth int) ([]byte, error) {
	if a == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONValue(b, v, depth); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONFloat writes a finite f as encoding/json does: like
// strconv's shortest 'f', but 'e' below 1e-6 and from 1e21 on, with
// exponents not padded to two digits.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString writes s quoted as encoding/json does without HTML
// escaping: '"', '\\' and control characters escaped, U+2028 and U+2029
// escaped, each byte of invalid UTF-8 replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}

// validJSONNumber reports whether s is a JSON number, as encoding/json
// checks a json.Number before writing it.
func validJSONNumber(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	digits := func() int {
		n := 0
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		s = s[n:]
		return n
	}
	switch {
	case s == "":
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		digits()
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' {
		s = s[1:]
		if digits() == 0 {
			return false
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
		}
		if digits() == 0 {
			return false
		}
	}
	return s == ""
}
