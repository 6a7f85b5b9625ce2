package template

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ToBool reads the usual spellings of a truth value: a bool, a number (0
// is false), or text true/false, yes/no, y/n, on/off, t/f, 1/0 in any case
// (surrounding space ignored). Anything else, including empty text, is an
// error naming the value's kind (not the value: it may be a secret).
func ToBool(v any) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case float64:
		return t != 0, nil
	case int:
		return t != 0, nil
	case int64:
		return t != 0, nil
	case json.Number:
		f, err := t.Float64()
		return f != 0, err
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true", "yes", "y", "on", "t", "1":
			return true, nil
		case "false", "no", "n", "off", "f", "0":
			return false, nil
		}
		return false, ferr(fmt.Sprintf("toBool: %q is not true/false, yes/no, y/n, on/off or 1/0", clip(t)))
	case nil:
		return false, ferr("toBool: the value is missing")
	}
	return false, ferr(fmt.Sprintf("toBool: a %T is not a truth value", v))
}

// ToInt reads a whole number: a number without a fraction, or text such
// as "42", " 42 ", "42.0", "-7", "+3". Fractions, overflow and other text
// are errors.
func ToInt(v any) (int64, error) {
	f, err := ToFloat(v)
	if err != nil {
		return 0, ferr("toInt" + strings.TrimPrefix(err.Error(), "toFloat"))
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, ferr(fmt.Sprintf("toInt: %v is not a whole number", f))
	}
	return int64(f), nil
}

// ToFloat reads a number: a number, or text such as "4.5", " 1e3 ".
func ToFloat(v any) (float64, error) {
	switch t := v.(type) {
	case float64:
		return t, nil
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case json.Number:
		return t.Float64()
	case bool:
		if t {
			return 1, nil
		}
		return 0, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, ferr(fmt.Sprintf("toFloat: %q is not a number", clip(t)))
		}
		return f, nil
	case nil:
		return 0, ferr("toFloat: the value is missing")
	}
	return 0, ferr(fmt.Sprintf("toFloat: a %T is not a number", v))
}

// clip shortens text quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
