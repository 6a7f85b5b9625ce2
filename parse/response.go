package parse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/antchfx/xmlquery"
	"github.com/tidwall/gjson"
)

// Format is how a response body is read.
type Format string

// The body formats. Auto decides from the Content-Type header, or from the body when
// the header is missing.
const (
	Auto Format = ""
	JSON Format = "json"
	XML  Format = "xml"
	Text Format = "text"
)

// ParseFormat checks a format name as written in an integration file ("", "auto",
// "json", "xml" or "text", case-insensitive).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "json":
		return JSON, nil
	case "xml":
		return XML, nil
	case "text":
		return Text, nil
	}
	return Auto, fmt.Errorf("unknown response format %q: use json, xml, text or leave it out to decide from Content-Type", s)
}

// Response is one HTTP response as read by the engine (body already size-capped by
// the engine).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Doc is a response prepared for extraction. Parsing of the body as JSON or XML
// happens lazily and at most once per Doc, whatever the number of extractors.
// A Doc is meant for the goroutine handling one response; it is nevertheless safe
// for concurrent use (the lazy parses are guarded by sync.Once).
type Doc struct {
	resp    Response
	format  Format
	content []byte // Body without a leading UTF-8 byte-order mark
	// maxDepth bounds the nesting of JSON and XML bodies.
	maxDepth int

	jsonOnce sync.Once
	jsonErr  error

	xmlOnce   sync.Once
	xmlRoot   *xmlquery.Node
	xmlErr    error
	xmlParses int // test hook: how many times the body was parsed as XML

	textOnce sync.Once
	text     string

	valueOnce sync.Once
	value     any
	valueErr  error
}

// NewDoc prepares r for extraction. With f == Auto (or an unknown format) the format
// is decided by the Content-Type header: */json and *+json are JSON; */xml, *+xml
// (text/xml, application/soap+xml, ...) are XML; anything else is Text. Without a
// Content-Type the body is sniffed: a first non-space byte '{' or '[' means JSON,
// '<' means XML, else Text. NewDoc does no parsing. A JSON or XML body that
// nests deeper than DefaultMaxDepth (or MaxDepth) levels is refused, before
// any parsing, with an error naming the limit.
func NewDoc(r Response, f Format, opts ...DocOption) *Doc {
	d := &Doc{resp: r, content: trimBOM(r.Body), maxDepth: DefaultMaxDepth}
	for _, o := range opts {
		o(d)
	}
	switch f {
	case JSON, XML, Text:
		d.format = f
	default:
		d.format = detectFormat(r.Header.Get("Content-Type"), d.content)
	}
	return d
}

// trimBOM drops a leading UTF-8 byte-order mark, which some servers send before JSON
// or text bodies.
func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// detectFormat decides a body's format from its Content-Type, or sniffs body when
// the header is empty.
func detectFormat(contentType string, body []byte) Format {
	// The media type as mime.ParseMediaType returns it (lowercased, without
	// parameters), also when the parameters are malformed, minus the map of
	// parameters it would allocate for every response.
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		return sniff(body)
	}
	_, sub, _ := strings.Cut(mt, "/")
	switch {
	case sub == "json" || strings.HasSuffix(sub, "+json"):
		return JSON
	case sub == "xml" || strings.HasSuffix(sub, "+xml"):
		return XML
	}
	return Text
}

func sniff(body []byte) Format {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return JSON
		case '<':
			return XML
		}
		return Text
	}
	return Text
}

// Format reports how the body is read: the format given to NewDoc or the detected one.
func (d *Doc) Format() Format { return d.format }

// Response returns the response the Doc was made from.
func (d *Doc) Response() Response { return d.resp }

// empty reports whether the body holds nothing but white space (a 204, or
// a 200 without a body): JSON and XPath captures find nothing in it rather
// than fail on it, as a declared response format accepts an empty body.
func (d *Doc) empty() bool { return len(bytes.TrimSpace(d.content)) == 0 }

// JSONValid returns nil if the body is valid JSON. Otherwise the error says
// "response body is not valid JSON: <reason>", quoting at most the first 64 bytes of
// the body. The check runs once per Doc.
func (d *Doc) JSONValid() error {
	d.jsonOnce.Do(func() {
		if off := jsonDepth(d.content, d.depthLimit()); off >= 0 {
			d.jsonErr = depthError("JSON", d.depthLimit(), off)
			return
		}
		if gjson.ValidBytes(d.content) {
			return
		}
		d.jsonErr = fmt.Errorf("response body is not valid JSON: %s", jsonReason(d.content))
	})
	return d.jsonErr
}

func jsonReason(body []byte) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "body is empty"
	}
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at offset %d; body starts %s", se.Error(), se.Offset, quoteBytes(body))
	case err != nil:
		return fmt.Sprintf("%s; body starts %s", err.Error(), quoteBytes(body))
	}
	return "rejected by the JSON parser; body starts " + quoteBytes(body)
}

// xmlReaders holds the readers xmlquery reads answers through. Given any
// other reader it wraps it in a new 4 KiB bufio.Reader per answer, a sixth
// of the bytes a SOAP answer costs; a parse leaves nothing in the reader (it
// is reset before it goes back), so the pool carries no state between
// answers.
var xmlReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// XMLRoot parses the body as XML, once per Doc, and returns the document node.
// Errors say "response body is not valid XML: <reason>".
func (d *Doc) XMLRoot() (*xmlquery.Node, error) {
	d.xmlOnce.Do(func() {
		d.xmlParses++
		if len(bytes.TrimSpace(d.content)) == 0 {
			d.xmlErr = errors.New("response body is not valid XML: body is empty")
			return
		}
		if off := xmlDepth(d.content, d.depthLimit()); off >= 0 {
			d.xmlErr = depthError("XML", d.depthLimit(), off)
			return
		}
		br := xmlReaders.Get().(*bufio.Reader)
		br.Reset(bytes.NewReader(d.content))
		root, err := xmlquery.Parse(br) // uses br as it is: a *bufio.Reader of the default size
		br.Reset(nil)
		xmlReaders.Put(br)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "xmlquery: ")
			d.xmlErr = fmt.Errorf("response body is not valid XML: %s; body starts %s", msg, quoteBytes(d.content))
			return
		}
		d.xmlRoot = root
	})
	return d.xmlRoot, d.xmlErr
}

// bodyText returns the body (without byte-order mark) as a string, converted once.
func (d *Doc) bodyText() string {
	d.textOnce.Do(func() { d.text = string(d.content) })
	return d.text
}

// Value returns the whole body as a generic value, decoded once: for JSON the decoded
// value (map[string]any, []any, float64, string, bool or nil); for XML the body as a
// string; for Text the body as a string without trailing newlines.
func (d *Doc) Value() (any, error) {
	d.valueOnce.Do(func() {
		switch d.format {
		case JSON:
			if err := d.JSONValid(); err != nil {
				d.valueErr = err
				return
			}
			var v any
			if err := json.Unmarshal(d.content, &v); err != nil {
				d.valueErr = fmt.Errorf("response body is not valid JSON: %v", err)
				return
			}
			d.value = v
		case XML:
			d.value = d.bodyText()
		default:
			d.value = strings.TrimRight(d.bodyText(), "\r\n")
		}
	})
	return d.value, d.valueErr
}

// quoteBytes quotes at most the first 64 bytes of b, cut on a rune boundary.
func quoteBytes(b []byte) string {
	const limit = 64
	if len(b) <= limit {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:runeCut(b, limit)], len(b))
}
