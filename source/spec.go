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
	pagType   string
	start     int
	size      int
	cursor    parse.Extractor
	next      parse.Extractor
	stop      *cond.Program
	stopResp  bool
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
		s.pagType, s.size = p.Type.Value, p.Size
		switch p.Type.Value {
		case "page":
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
	doc := parse.NewDoc(parse.Response{Status: status, Header: header, Body: body}, s.format)
	if s.recXPath != nil {
		root, err := doc.XMLRoot()
		if err != nil {
			return nil, err
		}
		var out []map[string]any
		for _, n := range xmlquery.QuerySelectorAll(root, s.recXPath) {
			out = append(out, xmlRecord(n))
		}
		return out, nil
	}
	if err := doc.JSONValid(); err != nil {
		return nil, err
	}
	res := gjson.ParseBytes(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	what := "the page"
	if s.recJSON != "" {
		res = res.Get(s.recJSON)
		what = fmt.Sprintf("records path %q", s.recJSON)
	}
	if !res.Exists() || res.Type == gjson.Null {
		return nil, nil
	}
	if !res.IsArray() {
		return nil, fmt.Errorf("%s is not a list of records (set records: { json: PATH } to the array)", what)
	}
	var out []map[string]any
	var bad error
	res.ForEach(func(_, v gjson.Result) bool {
		m, err := decodeRecord([]byte(v.Raw))
		if err != nil {
			bad = fmt.Errorf("record %d of %s: %w", len(out)+1, what, err)
			return false
		}
		out = append(out, m)
		return true
	})
	return out, bad
}

func decodeRecord(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers stay exact, as for leads files
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a record must be a JSON object, got %s", strings.TrimSpace(string(b[:min(len(b), 40)])))
	}
	return m, nil
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
