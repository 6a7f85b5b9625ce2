package parse

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/plumbhq/plumb/internal/jsonw"
)

// Coercion types accepted by Spec.Type and Coerce.
const (
	TypeAny    = ""
	TypeString = "string"
	TypeNumber = "number"
	TypeInt    = "int"
	TypeBool   = "bool"
)

// Coerce converts an extracted value to typ; nil stays nil whatever typ is.
//
//   - "": v unchanged.
//   - "number": float64, from any Go number or from a decimal string (surrounding
//     spaces ignored; no hex, NaN or Inf). Booleans are not numbers.
//   - "int": int64, from an integer-valued number or a string holding one ("45", "45.0").
//   - "bool": from a bool; from the numbers 1 and 0; from the strings true/false, 1/0,
//     yes/no, y/n (case-insensitive, spaces ignored).
//   - "string": strings unchanged; numbers in plain decimal (float64 formatted with
//     strconv 'f' -1, never an exponent); bools as true/false; objects and arrays as JSON.
//
// Errors read like `"abc" is not a number`, quoting at most 64 bytes of the value.
func Coerce(v any, typ string) (any, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if v == nil || typ == TypeAny {
		return v, nil
	}
	switch typ {
	case TypeNumber:
		return toNumber(v)
	case TypeInt:
		return toInt(v)
	case TypeBool:
		return toBool(v)
	default:
		return toString(v)
	}
}

// checkType reports an unknown coercion type, with a hint for common aliases.
func checkType(typ string) error {
	switch typ {
	case TypeAny, TypeString, TypeNumber, TypeInt, TypeBool:
		return nil
	}
	hint := ""
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "string", "str", "text":
		hint = ` (did you mean "string"?)`
	case "number", "float", "float64", "decimal", "double", "numeric":
		hint = ` (did you mean "number"?)`
	case "int", "integer", "int64", "long":
		hint = ` (did you mean "int"?)`
	case "bool", "boolean":
		hint = ` (did you mean "bool"?)`
	}
	return fmt.Errorf("unknown type %q%s: use string, number, int or bool", typ, hint)
}

func toNumber(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s is not a number", describe(v))
		}
		return x, nil
	case float32:
		return toNumber(float64(x))
	case string:
		return parseDecimal(x)
	case json.Number:
		return parseDecimal(string(x))
	}
	if i, ok := asInt64(v); ok {
		return float64(i), nil
	}
	if u, ok := v.(uint64); ok {
		return float64(u), nil
	}
	if u, ok := v.(uint); ok {
		return float64(u), nil
	}
	return nil, fmt.Errorf("%s is not a number", describe(v))
}

// parseDecimal parses a plain decimal number (optionally with exponent).
func parseDecimal(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%s is not a number", describe(s))
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			return 0, fmt.Errorf("%s is not a number", describe(s))
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Errorf("%s is out of range for a number", describe(s))
		}
		return 0, fmt.Errorf("%s is not a number", describe(s))
	}
	return f, nil
}

func toInt(v any) (any, error) {
	if i, ok := asInt64(v); ok {
		return i, nil
	}
	switch x := v.(type) {
	case uint:
		return uintToInt(uint64(x), v)
	case uint64:
		return uintToInt(x, v)
	case float64:
		return floatToInt(x, v)
	case float32:
		return floatToInt(float64(x), v)
	case string:
		return stringToInt(x)
	case json.Number:
		return stringToInt(string(x))
	}
	return nil, fmt.Errorf("%s is not an integer", describe(v))
}

func uintToInt(u uint64, orig any) (any, error) {
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("%s is out of range for an int", describe(orig))
	}
	return int64(u), nil
}

func floatToInt(f float64, orig any) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) {
		return nil, fmt.Errorf("%s is not an integer", describe(orig))
	}
	// float64(math.MaxInt64) rounds up to 2^63, which does not fit.
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return nil, fmt.Errorf("%s is out of range for an int", describe(orig))
	}
	return int64(f), nil
}

func stringToInt(s string) (any, error) {
	t := strings.TrimSpace(s)
	i, err := strconv.ParseInt(t, 10, 64)
	if err == nil {
		return i, nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return nil, fmt.Errorf("%s is out of range for an int", describe(s))
	}
	f, err := parseDecimal(t)
	if err != nil {
		return nil, fmt.Errorf("%s is not an integer", describe(s))
	}
	return floatToInt(f, s)
}

func toBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "y":
			return true, nil
		case "false", "0", "no", "n":
			return false, nil
		}
	default:
		if f, err := toNumber(v); err == nil {
			switch f.(float64) {
			case 1:
				return true, nil
			case 0:
				return false, nil
			}
		}
	}
	return nil, fmt.Errorf("%s is not a boolean (use true/false, yes/no, y/n or 1/0)", describe(v))
}

func toString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case json.Number:
		return string(x), nil
	case uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case map[string]any, []any:
		// No HTML escaping: "<a&b>" stays as written, not "\u003ca\u0026b\u003e".
		b, err := jsonw.AppendValue(nil, x)
		if err != nil {
			return nil, fmt.Errorf("%s cannot be written as a string: %v", describe(v), err)
		}
		return string(b), nil
	}
	if i, ok := asInt64(v); ok {
		return strconv.FormatInt(i, 10), nil
	}
	return fmt.Sprint(v), nil
}

// asInt64 converts the signed integer types and uint8..uint32.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	}
	return 0, false
}

// describe renders a value for an error message: strings quoted and cut to 64 bytes.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return quoteString(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return fmt.Sprint(x)
	}
	return fmt.Sprintf("a value of type %T", v)
}

func quoteString(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:runeCut([]byte(s[:limit+1]), limit)], len(s))
}

// runeCut returns n, or less so that b[:n] does not end inside a UTF-8 sequence.
func runeCut(b []byte, n int) int {
	if len(b) <= n {
		return len(b)
	}
	cut := n
	for cut > 0 && n-cut < utf8.UTFMax && !utf8.RuneStart(b[cut]) {
		cut--
	}
	if !utf8.RuneStart(b[cut]) {
		return n // not valid UTF-8 anyway
	}
	return cut
}
