// Package source runs the source: section of an integration: it pulls
// records from an API page by page (engine.Runner.FetchPage), selects the
// records of each page, follows the pagination, runs every record through
// the integration's steps (engine.Runner.RunAll) and saves the sync state
// in a bbolt file only once every record of a page has an outcome
// (at-least-once: the state never runs ahead of the work). Records whose
// steps ended in error are kept in a retry list in the same file and run
// again first by the next sync. plumb sync is its command line; a program
// of one's own syncs the same way:
//
//	in, err := steps.Load("integration.yaml")   // the file model: its source: section
//	spec, err := source.Compile(in)
//	plan, err := engine.Load("integration.yaml") // the same file: its steps
//	runner, err := plan.Bind(engine.Config{Values: settings})
//	defer runner.Close()
//	store, err := source.OpenStore("sync.db")    // the saved state (bbolt)
//	defer store.Close()
//	rep, err := source.Sync(ctx, runner, spec, store, source.Options{Concurrency: 8},
//		func(rec source.Record, res *engine.Result) error { … return nil })
//	fmt.Println(rep.Ended, rep.Pages, rep.Records)
package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/antchfx/xmlquery"
	"github.com/antchfx/xpath"
	"github.com/tidwall/gjson"
	"golang.org/x/time/rate"

	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// Spec is a compiled source: section.
type Spec struct {
	// Key names the sync state in the state file: the integration's name
	// and the source's, joined by a slash.
	Key string
	// integration is the name of the file's integration: Sync checks the
	// runner's plan against it
	integration string

	recJSON   string
	recXPath  *xpath.Expr
	format    parse.Format
	pagType   steps.PaginateType
	start     int
	size      int
	cursor    parse.Extractor
	next      parse.Extractor
	stop      *cond.Program
	stopResp  bool
	stopRead  bodyPaths // what stop_when reads of response.body
	maxPages  int
	incField  []string
	incStart  string
	lookback  time.Duration
	limit     rate.Limit
	recordKey []string
}

// Compile compiles the source: section of in. It returns an error when in
// has none.
func Compile(in *steps.Integration) (*Spec, error) {
	src := in.Source
	if src == nil {
		return nil, errors.New(in.File + ": the integration has no source: section to sync from")
	}
	name := src.Name.Value
	if name == "" {
		name = "source"
	}
	s := &Spec{Key: in.Name.Value + "/" + name, integration: in.Name.Value, maxPages: src.MaxPages, format: parse.Format(src.Response.Format)}
	if s.maxPages == 0 {
		s.maxPages = steps.DefaultMaxPages
	}
	var errs steps.ErrorList
	if r := src.Records; r != nil {
		if r.XPath != "" {
			x, err := xpath.CompileWithNS(r.XPath, src.Namespaces)
			if err != nil {
				errs.Add(r.Pos, "", "source: records: xpath %q: %v", r.XPath, err)
			}
			s.recXPath = x
		} else {
			s.recJSON = r.JSON
		}
	}
	if p := src.Paginate; p != nil {
		s.pagType, s.size = steps.PaginateType(p.Type.Value), p.Size
		switch s.pagType {
		case steps.PaginatePage:
			s.start = 1
		}
		if p.Start != nil {
			s.start = *p.Start
		}
		loc := func(l *steps.Locator) parse.Extractor {
			if l == nil {
				return nil
			}
			e, err := parse.Compile(parse.Spec{JSON: l.JSON, XPath: l.XPath, Header: l.Header}, parse.Namespaces(src.Namespaces))
			if err != nil {
				errs.Add(l.Pos, "", "source: paginate: %v", err)
			}
			return e
		}
		s.cursor, s.next = loc(p.Cursor), loc(p.Next)
	}
	if src.StopWhen.IsSet() {
		prog, err := cond.Compile(src.StopWhen.Value)
		if err != nil {
			errs.Add(src.StopWhen.Pos, "", "source: stop_when: %v", err)
		} else {
			s.stop = prog
			for _, ref := range prog.Refs() {
				if ref == "response" || strings.HasPrefix(ref, "response.") {
					s.stopResp = true
				}
			}
			if s.stopResp {
				s.stopRead = stopBodyPaths(src.StopWhen.Value)
			}
		}
	}
	if inc := src.Incremental; inc != nil {
		s.incField = strings.Split(inc.CursorField, ".")
		s.incStart, s.lookback = inc.Start, inc.Lookback
	}
	if src.Rate.IsSet() {
		if n, per, err := steps.ParseRate(src.Rate.Value); err == nil {
			s.limit = rate.Limit(float64(n) / per.Seconds())
		}
	}
	if src.Key != "" {
		s.recordKey = strings.Split(src.Key, ".")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// MaxPages is the most pages one sync fetches.
func (s *Spec) MaxPages() int { return s.maxPages }

// Incremental reports whether the source keeps a cursor between syncs.
func (s *Spec) Incremental() bool { return s.incField != nil }

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
	return decodeFrom(bytes.NewReader(b), b)
}

func decodeRecordString(s string) (map[string]any, error) {
	return decodeFrom(strings.NewReader(s), s)
}

func decodeFrom[T string | []byte](r io.Reader, raw T) (map[string]any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber() // numbers stay exact, as for leads files
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, notObject(raw)
	}
	return m, nil
}

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

// extract reads one value of a page with a locator; found is false for a
// missing, null or empty value.
func extract(e parse.Extractor, format parse.Format, status int, header http.Header, body []byte) (string, bool, error) {
	v, found, err := e.Extract(parse.NewDoc(parse.Response{Status: status, Header: header, Body: body}, format))
	if err != nil || !found || v == nil {
		return "", false, err
	}
	str := fmt.Sprint(v)
	return str, str != "", nil
}

// nextLink returns the target of the rel="next" link of Link headers
// (RFC 8288), or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			i := strings.IndexByte(v, '<')
			j := strings.IndexByte(v, '>')
			if i < 0 || j < i {
				break
			}
			target := v[i+1 : j]
			v = v[j+1:]
			// the link's parameters run to a comma outside quotes
			var params []string
			var cur strings.Builder
			quoted := false
			k := 0
			for ; k < len(v); k++ {
				c := v[k]
				if c == '"' {
					quoted = !quoted
				}
				if !quoted && (c == ';' || c == ',') {
					params = append(params, cur.String())
					cur.Reset()
					if c == ',' {
						break
					}
					continue
				}
				cur.WriteByte(c)
			}
			params = append(params, cur.String())
			if k < len(v) {
				v = v[k+1:]
			} else {
				v = ""
			}
			for _, param := range params {
				key, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(key), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// compareCursor orders two cursor values: numerically when both are
// numbers, in time when both are RFC 3339 timestamps, else as strings.
func compareCursor(a, b any) int {
	as, bs := fmt.Sprint(a), fmt.Sprint(b)
	af, aerr := strconv.ParseFloat(as, 64)
	bf, berr := strconv.ParseFloat(bs, 64)
	if aerr == nil && berr == nil {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	at, aerr := time.Parse(time.RFC3339Nano, as)
	bt, berr := time.Parse(time.RFC3339Nano, bs)
	if aerr == nil && berr == nil {
		return at.Compare(bt)
	}
	return strings.Compare(as, bs)
}

// lookBack takes d off a cursor value: off a timestamp (kept in its
// format as far as RFC 3339 goes), or d in seconds off a number.
func lookBack(v any, d time.Duration) any {
	if d <= 0 || v == nil {
		return v
	}
	s := fmt.Sprint(v)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		layout := time.RFC3339
		if strings.Contains(s, ".") {
			layout = "2006-01-02T15:04:05.000Z07:00"
		}
		return t.Add(-d).Format(layout)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n - int64(d/time.Second)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f - d.Seconds()
	}
	return v
}
