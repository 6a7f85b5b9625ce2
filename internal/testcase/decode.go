package testcase

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/steps"
)

// Test cases are decoded by steps.Decode, strictly and with positions as
// integration files are; the types here decode themselves through its
// steps.NodeDecoder hook.

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

// DecodePlumb implements steps.NodeDecoder.
func (v *Value) DecodePlumb(file string, n *yaml.Node, _ string) steps.ErrorList {
	v.Pos, v.Set = nodePos(file, n), true
	var errs steps.ErrorList
	var x any
	if err := untimed(n, map[*yaml.Node]*yaml.Node{}).Decode(&x); err != nil {
		errs.Add(v.Pos, "", "%v", err)
		return errs
	}
	x, err := plain(x)
	if err != nil {
		errs.Add(v.Pos, "", "%v", err)
		return errs
	}
	v.V = x
	return nil
}

// nodePos is where n is written in file.
func nodePos(file string, n *yaml.Node) steps.Pos {
	return steps.Pos{File: file, Line: n.Line, Col: n.Column}
}

// untimed returns a copy of the tree n in which timestamps are strings: an
// unquoted `birth_date: 1985-09-09` means the text 1985-09-09, as in a
// JSON lead, not a time.Time printed as "1985-09-09 00:00:00 +0000 UTC".
// Aliases keep pointing at (copies of) their anchors; copies maps nodes
// already copied.
func untimed(n *yaml.Node, copies map[*yaml.Node]*yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if c, ok := copies[n]; ok {
		return c
	}
	c := new(yaml.Node)
	copies[n] = c
	*c = *n
	if c.Kind == yaml.ScalarNode && c.ShortTag() == "!!timestamp" {
		c.Tag = "!!str"
	}
	c.Alias = untimed(n.Alias, copies)
	if n.Content != nil {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			c.Content[i] = untimed(x, copies)
		}
	}
	return c
}

// plain converts a value decoded from YAML to the shapes encoding/json
// produces, so it compares equal to values read from JSON.
func plain(x any) (any, error) {
	switch t := x.(type) {
	case nil, string, bool, float64:
		return t, nil
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case uint64:
		return float64(t), nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[k] = pv
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("mapping keys must be strings, got %v", k)
			}
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[ks] = pv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			pv, err := plain(v)
			if err != nil {
				return nil, err
			}
			out[i] = pv
		}
		return out, nil
	}
	return fmt.Sprint(x), nil
}
