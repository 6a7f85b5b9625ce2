package history

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
)

// AppendJSON appends the JSON encoding of r to dst and returns the extended
// buffer: the bytes encoding/json writes for r's fields with HTML escaping
// off, written without reflection (a record is encoded once per lead). On
// an error (a time encoding/json cannot write either) it returns dst as it
// was and the error.
func (r *Record) AppendJSON(dst []byte) ([]byte, error) {
	b := jsonw.AppendString(append(dst, `{"id":`...), r.ID)
	b = jsonw.AppendString(append(b, `,"integration":`...), r.Integration)
	b = jsonw.AppendString(append(b, `,"source":`...), r.Source)
	b = appendOmit(b, `,"request_id":`, r.RequestID)
	b = appendOmit(b, `,"batch":`, r.Batch)
	b = jsonw.AppendString(append(b, `,"outcome":`...), r.Outcome)
	b = appendOmit(b, `,"class":`, r.Class)
	b = appendOmit(b, `,"reason":`, r.Reason)
	b = appendOmit(b, `,"step":`, r.Step)
	var err error
	if !r.Accepted.IsZero() {
		if b, err = jsonw.AppendTime(append(b, `,"accepted":`...), r.Accepted); err != nil {
			return dst, err
		}
	}
	if b, err = jsonw.AppendTime(append(b, `,"started":`...), r.Started); err != nil {
		return dst, err
	}
	if b, err = jsonw.AppendTime(append(b, `,"finished":`...), r.Finished); err != nil {
		return dst, err
	}
	b = jsonw.AppendMillis(append(b, `,"queued_ms":`...), time.Duration(r.QueuedMS))
	b = jsonw.AppendMillis(append(b, `,"duration_ms":`...), time.Duration(r.DurationMS))
	b = append(b, `,"steps":`...)
	if r.Steps == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i := range r.Steps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStep(b, &r.Steps[i])
	}
	return append(b, "]}"...), nil
}

// MarshalJSON encodes r as AppendJSON does (json.Marshal then escapes HTML
// in it, as it would have without this method).
func (r Record) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 512))
}

// appendOmit writes key and s unless s is empty (omitempty).
func appendOmit(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonw.AppendString(append(b, key...), s)
}

// appendInt writes key and n unless n is 0 (omitempty).
func appendInt(b []byte, key string, n int) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), int64(n), 10)
}

func appendStep(b []byte, s *Step) []byte {
	b = jsonw.AppendString(append(b, `{"name":`...), s.Name)
	b = jsonw.AppendString(append(b, `,"outcome":`...), s.Outcome)
	b = appendOmit(b, `,"class":`, s.Class)
	b = appendOmit(b, `,"reason":`, s.Reason)
	b = appendOmit(b, `,"method":`, s.Method)
	b = appendOmit(b, `,"url":`, s.URL)
	b = appendInt(b, `,"status":`, s.Status)
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(s.Attempts), 10)
	b = jsonw.AppendMillis(append(b, `,"duration_ms":`...), time.Duration(s.DurationMS))
	b = appendOmit(b, `,"group":`, s.Group)
	if len(s.Tries) > 0 {
		b = append(b, `,"tries":[`...)
		for i := range s.Tries {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendTry(b, &s.Tries[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendTry(b []byte, t *Try) []byte {
	b = strconv.AppendInt(append(b, `{"attempt":`...), int64(t.Attempt), 10)
	if t.Fallback {
		b = append(b, `,"fallback":true`...)
	}
	b = appendInt(b, `,"status":`, t.Status)
	b = appendOmit(b, `,"class":`, t.Class)
	b = appendOmit(b, `,"error":`, t.Error)
	b = appendOmit(b, `,"rule":`, t.Rule)
	b = jsonw.AppendMillis(append(b, `,"duration_ms":`...), time.Duration(t.DurationMS))
	if q := t.Request; q != nil {
		b = jsonw.AppendString(append(b, `,"request":{"method":`...), q.Method)
		b = jsonw.AppendString(append(b, `,"url":`...), q.URL)
		if len(q.Header) > 0 {
			b = appendHeader(append(b, ','), q.Header)
		}
		b = append(appendOmit(b, `,"body":`, q.Body), '}')
	}
	if a := t.Response; a != nil {
		b = append(b, `,"response":{`...)
		open := len(b) // every field may be absent: a comma before all but the first
		if a.Status != 0 {
			b = strconv.AppendInt(append(b, `"status":`...), int64(a.Status), 10)
		}
		if len(a.Header) > 0 {
			b = appendHeader(comma(b, open), a.Header)
		}
		if a.Body != "" {
			b = jsonw.AppendString(append(comma(b, open), `"body":`...), a.Body)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// comma appends a comma when the object opened at open has a field.
func comma(b []byte, open int) []byte {
	if len(b) > open {
		return append(b, ',')
	}
	return b
}

// appendHeader writes `"header":` and h with its keys sorted; a nil value
// list is null, as encoding/json writes it.
func appendHeader(b []byte, h http.Header) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, `"header":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendStrings(append(jsonw.AppendString(b, k), ':'), h[k])
	}
	return append(b, '}')
}
