package source

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/antchfx/xmlquery"
	"github.com/tidwall/gjson"

	"github.com/plumbhq/plumb/internal/leadjson"
	"github.com/plumbhq/plumb/parse"
)

// Records returns the records of a page body. A missing or null records
// path is an empty page; anything but a list of objects is an error.
func (s *Spec) Records(status int, header http.Header, body []byte) ([]map[string]any, error) {
	p, err := s.pageRecords(status, header, body)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for m, err := range p.each {
		if err != nil {
			return nil, fmt.Errorf("record %d of %s: %w", len(out)+1, p.what, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// pageRecords are the records of one page, read from the page one at a
// time: a record is decoded into a map only when it is asked for (when the
// steps are about to run it), so a page holds its body (for XML, its tree)
// and not a map per record.
type pageRecords struct {
	n    int
	what string // the records path, for messages
	// JSON: the records' array (a view of the body) and its first and
	// last records
	list        gjson.Result
	first, last string
	// XML: the records' elements
	nodes []*xmlquery.Node
}

// pageRecords selects the records of a page body and checks that each
// is an object, without decoding them.
func (s *Spec) pageRecords(status int, header http.Header, body []byte) (*pageRecords, error) {
	doc := parse.NewDoc(parse.Response{Status: status, Header: header, Body: body}, s.format)
	if s.recXPath != nil {
		root, err := doc.XMLRoot()
		if err != nil {
			return nil, err
		}
		nodes := xmlquery.QuerySelectorAll(root, s.recXPath)
		return &pageRecords{n: len(nodes), what: "the page", nodes: nodes}, nil
	}
	if err := doc.JSONValid(); err != nil {
		return nil, err
	}
	res := gjson.ParseBytes(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	p := &pageRecords{what: "the page"}
	if s.recJSON != "" {
		res = res.Get(s.recJSON)
		p.what = fmt.Sprintf("records path %q", s.recJSON)
	}
	if !res.Exists() || res.Type == gjson.Null {
		return p, nil
	}
	if !res.IsArray() {
		return nil, fmt.Errorf("%s is not a list of records (set records: { json: PATH } to the array)", p.what)
	}
	var bad error
	res.ForEach(func(_, v gjson.Result) bool {
		p.n++
		if !v.IsObject() {
			bad = fmt.Errorf("record %d of %s: %w", p.n, p.what, notObject(v.Raw))
			return false
		}
		if p.n == 1 {
			p.first = v.Raw
		}
		p.last = v.Raw
		return true
	})
	if bad != nil {
		return nil, bad
	}
	p.list = res
	return p, nil
}

// each yields the records in order; a record that cannot be decoded comes
// with a *badRecord error instead.
func (p *pageRecords) each(yield func(map[string]any, error) bool) {
	if p.nodes != nil {
		for _, n := range p.nodes {
			if !yield(xmlRecord(n), nil) {
				return
			}
		}
		return
	}
	if p.n == 0 {
		return
	}
	p.list.ForEach(func(_, v gjson.Result) bool {
		m, err := decodeRecordString(v.Raw)
		if err != nil {
			return yield(nil, &badRecord{raw: v.Raw, err: err})
		}
		return yield(m, nil)
	})
}

// badRecord is a record of a page that could not be decoded (one nested
// deeper than encoding/json reads, say), with its JSON.
type badRecord struct {
	raw string
	err error
}

func (b *badRecord) Error() string { return b.err.Error() }
func (b *badRecord) Unwrap() error { return b.err }

// ends returns the page's first and last records.
func (p *pageRecords) ends() (first, last map[string]any) {
	if p.n == 0 {
		return nil, nil
	}
	if p.nodes != nil {
		return xmlRecord(p.nodes[0]), xmlRecord(p.nodes[p.n-1])
	}
	first, _ = decodeRecordString(p.first)
	last, _ = decodeRecordString(p.last)
	return first, last
}

func decodeRecord(b []byte) (map[string]any, error) {
	m, err := leadjson.Decode(b) // as every lead is read: numbers stay exact
	if _, ok := errors.AsType[*leadjson.NotObjectError](err); ok {
		return nil, notObject(b)
	}
	return m, err
}

func decodeRecordString(s string) (map[string]any, error) { return decodeRecord([]byte(s)) }

func notObject[T string | []byte](raw T) error {
	return fmt.Errorf("a record must be a JSON object, got %s", strings.TrimSpace(string(raw[:min(len(raw), 40)])))
}

// xmlRecord turns an element into a record: its attributes by name, each
// child element by local name (its text, or a record when it has child
// elements; repeated names make a list).
func xmlRecord(n *xmlquery.Node) map[string]any {
	m := map[string]any{}
	for _, a := range n.Attr {
		m[a.Name.Local] = a.Value
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != xmlquery.ElementNode {
			continue
		}
		var v any = strings.TrimSpace(c.InnerText())
		if hasElements(c) || len(c.Attr) > 0 {
			v = xmlRecord(c)
		}
		name := c.Data
		switch old := m[name].(type) {
		case nil:
			m[name] = v
		case []any:
			m[name] = append(old, v)
		default:
			m[name] = []any{old, v}
		}
	}
	return m
}

func hasElements(n *xmlquery.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == xmlquery.ElementNode {
			return true
		}
	}
	return false
}

// field reads a dotted field of a record.
func field(m map[string]any, path []string) (any, bool) {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return v, v != nil
}
