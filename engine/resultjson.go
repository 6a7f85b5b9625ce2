package engine

import (
	"strconv"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
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
	b = jsonw.AppendString(b, string(r.Outcome))
	if r.Reason != "" {
		b = jsonw.AppendString(append(b, `,"reason":`...), r.Reason)
	}
	if r.Step != "" {
		b = jsonw.AppendString(append(b, `,"step":`...), r.Step)
	}
	b = jsonw.AppendMillis(append(b, `,"duration_ms":`...), time.Duration(r.Duration))
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
	if b, err = jsonw.AppendMap(append(b, `,"lead":`...), r.Lead); err != nil {
		return nil, err
	}
	if r.Class != "" {
		b = jsonw.AppendString(append(b, `,"class":`...), string(r.Class))
	}
	return append(b, '}'), nil
}

// appendStep writes s's fields in declaration order, as their tags say.
func appendStep(b []byte, s *StepResult) ([]byte, error) {
	var err error
	b = jsonw.AppendString(append(b, `{"name":`...), s.Name)
	b = jsonw.AppendString(append(b, `,"outcome":`...), string(s.Outcome))
	if s.Reason != "" {
		b = jsonw.AppendString(append(b, `,"reason":`...), s.Reason)
	}
	if s.Method != "" {
		b = jsonw.AppendString(append(b, `,"method":`...), s.Method)
	}
	if s.URL != "" {
		b = jsonw.AppendString(append(b, `,"url":`...), s.URL)
	}
	if s.Status != 0 {
		b = strconv.AppendInt(append(b, `,"status":`...), int64(s.Status), 10)
	}
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(s.Attempts), 10)
	b = jsonw.AppendMillis(append(b, `,"duration_ms":`...), time.Duration(s.Duration))
	if len(s.Captured) > 0 {
		if b, err = jsonw.AppendMap(append(b, `,"captured":`...), s.Captured); err != nil {
			return nil, err
		}
	}
	if s.Fallback != "" {
		b = jsonw.AppendString(append(b, `,"fallback":`...), s.Fallback)
	}
	if len(s.Tried) > 0 {
		b = jsonw.AppendStrings(append(b, `,"tried":`...), s.Tried)
	}
	if s.Variant != 0 {
		b = strconv.AppendInt(append(b, `,"variant":`...), int64(s.Variant), 10)
	}
	if s.Timeout != 0 {
		b = jsonw.AppendMillis(append(b, `,"timeout_ms":`...), time.Duration(s.Timeout))
	}
	if s.Rule != "" {
		b = jsonw.AppendString(append(b, `,"rule":`...), s.Rule)
	}
	if s.Waited != 0 {
		b = jsonw.AppendMillis(append(b, `,"waited_ms":`...), time.Duration(s.Waited))
	}
	if s.Cache != "" {
		b = jsonw.AppendString(append(b, `,"cache":`...), s.Cache)
	}
	if s.Batch != "" {
		b = jsonw.AppendString(append(b, `,"batch":`...), s.Batch)
	}
	if s.Group != "" {
		b = jsonw.AppendString(append(b, `,"group":`...), s.Group)
	}
	if len(s.Appended) > 0 {
		if b, err = jsonw.AppendMap(append(b, `,"appended":`...), s.Appended); err != nil {
			return nil, err
		}
	}
	if len(s.Notes) > 0 {
		b = jsonw.AppendStrings(append(b, `,"notes":`...), s.Notes)
	}
	if s.Class != "" {
		b = jsonw.AppendString(append(b, `,"class":`...), string(s.Class))
	}
	return append(b, '}'), nil
}
