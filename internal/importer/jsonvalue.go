package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxJSONDepth bounds how deeply nested a body the importers read may be.
const maxJSONDepth = 64

// ParseJSON decodes one JSON value keeping the order of object keys:
// objects become *Map, arrays *List, numbers json.Number, and strings,
// bools and null as themselves.
func ParseJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeJSON(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeJSON(d *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		m := &Map{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeJSON(d, depth+1)
			if err != nil {
				return nil, err
			}
			m.Set(k.(string), v)
		}
		_, err := d.Token()
		return m, err
	case json.Delim('['):
		l := &List{}
		for d.More() {
			v, err := decodeJSON(d, depth+1)
			if err != nil {
				return nil, err
			}
			l.Add(v)
		}
		_, err := d.Token()
		return l, err
	}
	return t, nil
}

// Plain turns ordered values (*Map, *List) back into map[string]any and
// []any, and json.Number into int64 or float64.
func Plain(v any) any {
	switch v := v.(type) {
	case *Map:
		m := make(map[string]any, len(v.Entries))
		for _, e := range v.Entries {
			if !e.Off {
				m[e.Key] = Plain(e.Value)
			}
		}
		return m
	case *List:
		l := make([]any, 0, len(v.Items))
		for _, e := range v.Items {
			if !e.Off {
				l = append(l, Plain(e.Value))
			}
		}
		return l
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// Ordered turns plain Go values (maps, slices, numbers) into ordered ones
// the emitter writes; map keys are sorted so the output is stable.
func Ordered(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := &Map{}
		for _, k := range sortedKeys(v) {
			m.Set(k, Ordered(v[k]))
		}
		return m
	case []any:
		l := &List{}
		for _, x := range v {
			l.Add(Ordered(x))
		}
		return l
	case *Map, *List:
		return v
	}
	return v
}

// Flowed marks v and everything in it as flow style (one line).
func Flowed(v any) any {
	switch v := v.(type) {
	case *Map:
		v.Flow = true
		for _, e := range v.Entries {
			Flowed(e.Value)
		}
	case *List:
		v.Flow = true
		for _, e := range v.Items {
			Flowed(e.Value)
		}
	}
	return v
}

// Copy returns a deep copy of an ordered value.
func Copy(v any) any {
	switch v := v.(type) {
	case *Map:
		m := &Map{Flow: v.Flow}
		for _, e := range v.Entries {
			c := *e
			c.Value = Copy(e.Value)
			m.Entries = append(m.Entries, &c)
		}
		return m
	case *List:
		l := &List{Flow: v.Flow}
		for _, e := range v.Items {
			c := *e
			c.Value = Copy(e.Value)
			l.Items = append(l.Items, &c)
		}
		return l
	}
	return v
}
