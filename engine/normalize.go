package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// maxExactFloat is the largest integer float64 holds exactly (2^53).
const maxExactFloat = 1 << 53

// Normalize turns a lead of any JSON-like shape into the form templates and
// conditions read: maps with string keys, []any lists, and one number
// type. Numbers become float64 — from json.Number (decoders using
// UseNumber), any Go int, uint or float type — except integers beyond
// 2^53, which float64 cannot hold exactly: those stay json.Number so they
// are sent digit for digit. Structs, typed maps and slices are converted
// through their JSON encoding. Run and RunAll normalise their leads, so
// calling Normalize yourself is needed only to look at what they see.
func Normalize(v any) (map[string]any, error) {
	switch t := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return normalizeMap(t), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("lead: %w", err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytesReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("lead: a %T is not an object: %w", v, err)
	}
	return normalizeMap(m), nil
}

// normalizeMap deep-copies m with its numbers normalised. A nil map gives
// an empty one.
func normalizeMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = normalizeValue(v)
	}
	return out
}

func normalizeValue(v any) any {
	switch t := v.(type) {
	case nil, string, bool, float64:
		return v
	case map[string]any:
		return normalizeMap(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalizeValue(x)
		}
		return out
	case json.Number:
		return normalizeNumber(t)
	case int:
		return intValue(int64(t))
	case int8:
		return float64(t)
	case int16:
		return float64(t)
	case int32:
		return float64(t)
	case int64:
		return intValue(t)
	case uint:
		return uintValue(uint64(t))
	case uint8:
		return float64(t)
	case uint16:
		return float64(t)
	case uint32:
		return float64(t)
	case uint64:
		return uintValue(t)
	case float32:
		return float64(t)
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = x
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = x
		}
		return out
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct, reflect.Pointer:
		// typed maps, lists and structs: through their JSON encoding
		if b, err := json.Marshal(v); err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var x any
			if dec.Decode(&x) == nil {
				return normalizeValue(x)
			}
		}
	}
	return v
}

func intValue(n int64) any {
	if n > maxExactFloat || n < -maxExactFloat {
		return json.Number(strconv.FormatInt(n, 10))
	}
	return float64(n)
}

func uintValue(n uint64) any {
	if n > maxExactFloat {
		return json.Number(strconv.FormatUint(n, 10))
	}
	return float64(n)
}

// normalizeNumber keeps big integers exact and makes the rest float64.
func normalizeNumber(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return intValue(i)
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return uintValue(u)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return n // not a number Go can hold: keep its text
	}
	if f == math.Trunc(f) && math.Abs(f) > maxExactFloat && isIntegerLiteral(string(n)) {
		return n // an integer too long for int64: keep it exact
	}
	return f
}

func isIntegerLiteral(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
