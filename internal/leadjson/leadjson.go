// Package leadjson reads a lead from JSON, the one way plumb does: the
// bodies of POST /run and /leads, the queue's jobs, the lines of plumb
// run's NDJSON, webhook bodies and the records a source's pages hold
// (engine.DecodeLead is its public name).
package leadjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// bom is UTF-8's byte-order mark, allowed before a lead.
var bom = []byte("\xef\xbb\xbf")

// maxLeadDepth is how deeply a lead's arrays and objects may nest: the
// limit of encoding/json, so both readers refuse the same leads.
const maxLeadDepth = 10000

// Decode decodes one lead from JSON: an object, with white space and a
// UTF-8 byte-order mark around it allowed and nothing else, numbers as
// json.Number. Errors say what is wrong: "invalid JSON: …", "a lead must be
// a JSON object, got an array", "more than one JSON value".
//
// It gives what encoding/json's Decoder with UseNumber gives — a key given
// twice keeps its last value, bytes that are not UTF-8 become U+FFFD — at
// a fraction of the cost: a lead that gjson validates is built from gjson's
// parse; anything else goes through encoding/json, whose errors say where
// and what. The lead's strings are views of one copy of b: keeping one of
// them keeps that copy.
func Decode(b []byte) (map[string]any, error) {
	b = bytes.TrimPrefix(b, bom)
	if nestsDeeper(b, maxLeadDepth) || !gjson.ValidBytes(b) {
		return decodeStd(b)
	}
	r := gjson.ParseBytes(b)
	if !r.IsObject() {
		return nil, &NotObjectError{Kind: jsonKind(r.Value())}
	}
	return leadObject(r), nil
}

// NotObjectError is Decode's error for JSON that is a value but not an
// object.
type NotObjectError struct {
	// Kind names what it is: "null", "an array", "a string", "a number"
	// or "a boolean".
	Kind string
}

// Error says what the JSON was instead.
func (e *NotObjectError) Error() string { return "a lead must be a JSON object, got " + e.Kind }

// decodeStd is Decode by encoding/json: for what gjson does not
// take, so the error is encoding/json's.
func decodeStd(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &NotObjectError{Kind: jsonKind(v)}
	}
	// not dec.More: it reports a stray ']' or '}' after the object as the end
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return nil, fmt.Errorf("more than one JSON value: %s after the object", quoteStart(rest))
	}
	return m, nil
}

// nestsDeeper reports whether the arrays and objects of b nest deeper
// than limit: gjson's validator recurses once a level, so depth is checked
// before it runs. Fewer bytes than limit cannot.
func nestsDeeper(b []byte, limit int) bool {
	if len(b) <= limit {
		return false
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > limit {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// leadObject builds the map of a valid JSON object.
func leadObject(r gjson.Result) map[string]any {
	m := make(map[string]any)
	r.ForEach(func(k, v gjson.Result) bool {
		m[validUTF8(k.Str)] = leadValue(v)
		return true
	})
	return m
}

// leadValue is a valid JSON value as encoding/json decodes it into an any
// with UseNumber.
func leadValue(v gjson.Result) any {
	switch v.Type {
	case gjson.String:
		return validUTF8(v.Str)
	case gjson.Number:
		return json.Number(v.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Null:
		return nil
	}
	if v.IsObject() {
		return leadObject(v)
	}
	out := []any{}
	v.ForEach(func(_, x gjson.Result) bool {
		out = append(out, leadValue(x))
		return true
	})
	return out
}

// validUTF8 replaces each byte of s that is not part of UTF-8 with U+FFFD,
// as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+n]...)
		}
		i += n
	}
	return string(out)
}

// jsonKind names the kind of a decoded JSON value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// quoteStart quotes the first bytes of b for an error message.
func quoteStart(b []byte) string {
	if len(b) > 20 {
		return strconv.Quote(string(b[:20])) + "…"
	}
	return strconv.Quote(string(b))
}
