// Package har imports entries of a HAR file (the HTTP Archive a browser's
// developer tools save) into a draft plumb integration: the picked entries
// become steps, in the order they were recorded, and their recorded
// answers become the test case: each served by the case's fake partner,
// with the outcome plumb's rules give it. Browser noise (cookies of the
// session, sec-* and caching headers) is left out; credentials become
// secret settings.
package har

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// Options pick the entries.
type Options struct {
	// Entries are 1-based entry numbers; URL is a regular expression the
	// picked entries' URLs match. Without either, a file with one API
	// entry imports it and one with several lists them.
	Entries []int
	URL     string
	Name    string
}

type harFile struct {
	Log struct {
		Entries []*harEntry `json:"entries"`
	} `json:"log"`
}

type harEntry struct {
	Request struct {
		Method   string `json:"method"`
		URL      string `json:"url"`
		Headers  []nv   `json:"headers"`
		PostData *struct {
			MimeType string `json:"mimeType"`
			Text     string `json:"text"`
			Params   []nv   `json:"params"`
		} `json:"postData"`
	} `json:"request"`
	Response struct {
		Status  int  `json:"status"`
		Headers []nv `json:"headers"`
		Content struct {
			MimeType string `json:"mimeType"`
			Text     string `json:"text"`
			Encoding string `json:"encoding"`
		} `json:"content"`
	} `json:"response"`
}

type nv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Import reads a HAR file and returns the draft integration of the
// entries opts pick.
func Import(file string, data []byte, opts Options) (*importer.Integration, error) {
	var h harFile
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, importer.Errorf("save it from the browser's network panel: Save all as HAR", "%s is not a HAR file: %s", file, firstLine(err.Error()))
	}
	if h.Log.Entries == nil {
		return nil, importer.Errorf("save it from the browser's network panel: Save all as HAR", "%s is not a HAR file (no log.entries)", file)
	}
	if err := importer.CheckText(file, string(data)); err != nil {
		return nil, err
	}
	picked, err := pick(file, h.Log.Entries, opts)
	if err != nil {
		return nil, err
	}
	if err := importer.CheckFlowSize(len(picked), "the pick", "narrow --url, or pick entries with --entry N"); err != nil {
		return nil, err
	}
	return build(file, picked, opts.Name)
}

// picked is an entry with its number.
type picked struct {
	n int
	e *harEntry
}

// pick selects the entries opts name.
func pick(file string, all []*harEntry, opts Options) ([]picked, error) {
	var out []picked
	switch {
	case len(opts.Entries) > 0:
		for _, n := range opts.Entries {
			if n < 1 || n > len(all) || all[n-1] == nil {
				return nil, list(all, "entries are numbered from 1, as listed below", "%s has no entry %d", file, n)
			}
			out = append(out, picked{n, all[n-1]})
		}
	case opts.URL != "":
		re, err := regexp.Compile(opts.URL)
		if err != nil {
			return nil, importer.Errorf("write a Go regular expression", "--url %q: %v", opts.URL, err)
		}
		for i, e := range all {
			if e != nil && re.MatchString(e.Request.URL) {
				out = append(out, picked{i + 1, e})
			}
		}
		if len(out) == 0 {
			return nil, list(all, "choose with --entry N or another --url", "no entry of %s matches --url %q", file, opts.URL)
		}
	default:
		for i, e := range all {
			if e != nil && apiLike(e) {
				out = append(out, picked{i + 1, e})
			}
		}
		if len(out) != 1 {
			return nil, list(all, "choose with --entry N (repeat it for a flow) or --url REGEXP", "%s has %d API requests", file, len(out))
		}
	}
	return out, nil
}

// apiLike tells API calls from the page's own resources: a body sent, or
// an answer in JSON or XML.
func apiLike(e *harEntry) bool {
	mt := strings.ToLower(e.Response.Content.MimeType)
	switch strings.ToUpper(e.Request.Method) {
	case "OPTIONS", "CONNECT", "TRACE":
		return false // CORS preflights and the like
	case "GET", "HEAD", "":
		return strings.Contains(mt, "json") || (strings.Contains(mt, "xml") && !strings.Contains(mt, "html"))
	}
	return true
}

func list(all []*harEntry, hint, format string, args ...any) error {
	e := &importer.Error{Msg: fmt.Sprintf(format, args...), Hint: hint}
	for i, x := range all {
		if x == nil || !apiLike(x) {
			continue
		}
		u := x.Request.URL
		if j := strings.IndexByte(u, '?'); j >= 0 {
			u = u[:j] + "?…"
		}
		e.Detail = append(e.Detail, fmt.Sprintf("%3d  %-7s %s  → %d", i+1, x.Request.Method, u, x.Response.Status))
	}
	return e
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// noise are browser headers that are not part of the API call.
var noise = map[string]bool{
	"user-agent": true, "accept-language": true, "origin": true, "referer": true, "cache-control": true,
	"pragma": true, "dnt": true, "upgrade-insecure-requests": true, "priority": true, "if-none-match": true,
	"if-modified-since": true, "x-requested-with": true, "purpose": true,
}

// build writes a step per picked entry and the case of their answers.
func build(file string, ps []picked, name string) (*importer.Integration, error) {
	in := &importer.Integration{Name: name}
	first := ps[0].e.Request
	if in.Name == "" {
		in.Name = importer.Kebab(strings.ToLower(first.Method) + " " + lastSegment(first.URL))
	}
	in.Description = "Imported from the HAR file " + file
	in.Header = []string{
		"Imported by `plumb import har` from " + file + " (entries " + entryList(ps) + "). Check it: plumb validate FILE; plumb test FILE",
		"The recorded answers are the test case's. Credentials and session cookies are secret settings,",
		"without the recorded values.",
	}
	b := importer.NewBuilder(in, nil)
	for _, p := range ps {
		r, err := recorded(p)
		if err != nil {
			return nil, err
		}
		step, err := b.Step(r)
		if err != nil {
			return nil, importer.Errorf("pick another entry", "entry %d: %v", p.n, err)
		}
		in.Steps = append(in.Steps, step)
	}
	in.Tests = append(in.Tests, b.Case("the recorded answers", "each step is served the answer recorded in "+file))
	return in, nil
}

func entryList(ps []picked) string {
	var s []string
	for _, p := range ps {
		s = append(s, strconv.Itoa(p.n))
	}
	return strings.Join(s, ", ")
}

func lastSegment(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	segs := strings.Split(strings.TrimRight(u, "/"), "/")
	for i := len(segs) - 1; i >= 3; i-- {
		if s := segs[i]; s != "" && !strings.ContainsAny(s, "0123456789") {
			return s
		}
	}
	return "request"
}

// recorded turns an entry into the request it sent and its answer.
func recorded(p picked) (*importer.Recorded, error) {
	req := p.e.Request
	r := &importer.Recorded{Name: strings.ToLower(req.Method) + " " + lastSegment(req.URL), Method: strings.ToUpper(req.Method), URL: req.URL}
	for _, h := range req.Headers {
		lk := strings.ToLower(h.Name)
		if noise[lk] || strings.HasPrefix(lk, "sec-") || strings.HasPrefix(lk, ":") {
			continue
		}
		r.Headers = append(r.Headers, importer.KV{Key: h.Name, Value: h.Value})
	}
	if pd := req.PostData; pd != nil {
		if !hasHeader(r.Headers, "content-type") && pd.MimeType != "" {
			r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: pd.MimeType})
		}
		r.Body = pd.Text
		if pd.Text == "" {
			for _, f := range pd.Params {
				r.Form = append(r.Form, importer.KV{Key: f.Name, Value: f.Value})
			}
		}
	}
	resp := &p.e.Response
	if resp.Status == 0 {
		r.Notes = append(r.Notes, "TODO(import): the browser recorded no answer for this entry (status 0); the test case serves a placeholder")
		return r, nil
	}
	a := &importer.Response{Status: resp.Status, Body: resp.Content.Text}
	if resp.Content.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(resp.Content.Text)
		if err != nil {
			return nil, importer.Errorf("save the HAR again", "entry %d: the answer's base64 body is broken: %v", p.n, err)
		}
		a.Body = string(b)
	}
	for _, h := range resp.Headers {
		a.Headers = append(a.Headers, importer.KV{Key: h.Name, Value: h.Value})
	}
	if !hasHeader(a.Headers, "content-type") && resp.Content.MimeType != "" {
		a.Headers = append(a.Headers, importer.KV{Key: "Content-Type", Value: resp.Content.MimeType})
	}
	r.Response = a
	return r, nil
}

func hasHeader(hs []importer.KV, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Key, name) {
			return true
		}
	}
	return false
}
