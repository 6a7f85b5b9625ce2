// Package jsonw writes JSON without reflection: the bytes encoding/json
// writes with HTML escaping off (a json.Encoder after SetEscapeHTML(false),
// less its newline), for the values plumb encodes on every lead — decoded
// JSON values (string, float64, bool, nil, json.Number, map[string]any,
// []any, int, int64), strings, times and durations in milliseconds. The
// engine's results and the history's records are written with it; anything
// else is handed to encoding/json (Marshal), so the output never differs
// from encoding/json's.
package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxDepth is how deep AppendValue nests before it hands a value to
// encoding/json, which detects cycles (a map holding itself) where a plain
// recursion would never end.
const MaxDepth = 1000

// Marshal is json.Marshal without HTML escaping: `<`, `>` and `&` are
// written as themselves.
func Marshal(x any) ([]byte, error) { return MarshalIndent(x, "") }

// MarshalIndent is json.MarshalIndent(x, "", indent) without HTML escaping
// (an empty indent: Marshal).
func MarshalIndent(x any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// AppendValue appends v as Marshal writes it and returns the extended
// buffer; on an error (a NaN or infinite number, an invalid json.Number, a
// value encoding/json cannot marshal), nil and encoding/json's error.
func AppendValue(b []byte, v any) ([]byte, error) { return appendValue(b, v, 0) }

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return AppendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return AppendFloat(b, v), nil
		}
	case json.Number:
		s := string(v)
		if s == "" {
			s = "0" // as encoding/json writes the zero Number
		}
		if ValidNumber(s) {
			return append(b, s...), nil
		}
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case map[string]any:
		if depth < MaxDepth {
			return appendMap(b, v, depth+1)
		}
	case []any:
		if depth < MaxDepth {
			return appendArray(b, v, depth+1)
		}
	}
	// anything else, and the errors, are encoding/json's
	out, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// AppendMap appends m with its keys sorted, as encoding/json writes a map
// (nil: null); on an error, nil and the error of the value that failed.
func AppendMap(b []byte, m map[string]any) ([]byte, error) { return appendMap(b, m, 0) }

func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
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
		b = append(AppendString(b, k), ':')
		var err error
		if b, err = appendValue(b, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendArray(b []byte, a []any, depth int) ([]byte, error) {
	if a == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, v := range a {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendValue(b, v, depth); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// AppendStrings appends a list of strings (nil: null).
func AppendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, t := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, t)
	}
	return append(b, ']')
}

// AppendMillis appends d in milliseconds with three decimals (1.5 ms:
// 1.500), the unit and form of every duration_ms plumb writes.
func AppendMillis(b []byte, d time.Duration) []byte {
	// below 2^50 ns (13 days) d/1e6 is within 2^-53 of its float64, far
	// closer than a nanosecond is to a tie: integer rounding agrees
	const fast = 1 << 50
	us, ns := d/1000, d%1000
	if d < 0 || d >= fast || ns == 500 {
		// a tie rounds as the float64 nearest d/1e6 says; leave it, and
		// the rare negatives and huge ones, to strconv
		return strconv.AppendFloat(b, float64(d)/1e6, 'f', 3, 64)
	}
	if ns > 500 {
		us++
	}
	b = strconv.AppendInt(b, int64(us/1000), 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// AppendTime appends t quoted as time.Time's MarshalJSON writes it (RFC
// 3339 with nanoseconds); on an error (a year outside 0-9999, a zone
// offset of 24 hours or more), nil and MarshalJSON's error.
func AppendTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		_, err = t.MarshalJSON()
		return nil, err
	}
	return append(out, '"'), nil
}

// AppendFloat appends a finite f as encoding/json writes it: like
// strconv's shortest 'f', but 'e' below 1e-6 and from 1e21 on, with
// exponents not padded to two digits.
func AppendFloat(b []byte, f float64) []byte {
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

// AppendString appends s quoted as encoding/json writes it without HTML
// escaping: '"', '\\' and control characters escaped, U+2028 and U+2029
// escaped, each byte of invalid UTF-8 replaced by \ufffd.
func AppendString(b []byte, s string) []byte {
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

// ValidNumber reports whether s is a JSON number, as encoding/json checks a
// json.Number before writing it.
func ValidNumber(s string) bool {
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
