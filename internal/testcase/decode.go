package testcase

import (
	"github.com/plumbhq/plumb/steps"
)

// Test cases are decoded by steps.Value.DecodeStrict, strictly and with
// positions as integration files are; the types here decode themselves
// through its steps.ValueDecoder hook.

// Entry is one key of an ordered mapping, with its position.
type Entry[T any] = steps.Entry[T]

// Map is a YAML mapping that keeps the order and positions of its keys.
type Map[T any] = steps.Map[T]

// Value is any YAML value (mapping, list or scalar) decoded to plain Go
// values as encoding/json would produce them: map[string]any, []any,
// string, float64, bool or nil.
type Value struct {
	V   any
	Set bool
	Pos steps.Pos
}

// DecodeValue implements steps.ValueDecoder.
func (v *Value) DecodeValue(sv steps.Value, _ string) steps.ErrorList {
	v.Pos, v.Set = sv.Pos, true
	x, err := sv.Plain()
	if err != nil {
		var errs steps.ErrorList
		errs.Add(v.Pos, "", "%v", err)
		return errs
	}
	v.V = x
	return nil
}
