package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
	"github.com/plumbhq/plumb/template"
)

// request is a rendered request. It is built once per step and lead and can
// be sent any number of times (each try gets a fresh body reader).
type request struct {
	method string
	url    string
	header http.Header
	body   []byte
	// timeout bounds each try; auth indexes the credentials to sign with.
	timeout time.Duration
	auth    int
	// variant is the 1-based route chosen, 0 for none.
	variant int
	// sent is the header of the last try, as signed; cred names the
	// headers signing set (masked whole wherever shown).
	sent http.Header
	cred map[string]bool
	// mask masks the lead's secrets (settings and redacted captures);
	// shown is the URL as masked.
	mask  *masker
	shown string
	// reserved is what the last try's answer holds of the runner's
	// response memory budget.
	reserved int64
	// waited is the time spent waiting for limits: slots.
	waited time.Duration
	// fallback marks a fallback request link's request.
	fallback bool
}

// shownURL is the URL as logs and results show it: secrets masked.
func (r *request) shownURL() string {
	if r.shown == "" {
		r.shown = r.mask.url(r.url)
	}
	return r.shown
}

// httpRequest makes one try's request. The header is shared with r unless
// signed is set (auth writes into it, and must not change the next try's).
func (r *request) httpRequest(ctx context.Context, signed bool) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, err
	}
	req.Header = r.header
	if signed {
		req.Header = r.header.Clone()
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	return req, nil
}

// build renders a step's request for one lead.
func (p *Plan) build(ctx context.Context, st *step, data map[string]any) (*request, error) {
	urlT, headers, query, bd := st.url, st.headers, st.query, st.body
	r := &request{method: st.method, timeout: st.timeout, auth: st.auth}
	for i, v := range st.variants {
		if v.when != nil {
			ok, err := v.when.Eval(data)
			if err != nil {
				return nil, fmt.Errorf("variant %d: %w", i+1, err)
			}
			if !ok {
				continue
			}
		}
		if v.url != nil {
			urlT = v.url
		}
		if v.timeout > 0 {
			r.timeout = v.timeout
		}
		if v.method != "" {
			r.method = v.method
		}
		if v.body != nil {
			bd = v.body
		}
		if len(v.query) > 0 {
			query = mergeKV(query, v.query)
		}
		r.auth, r.variant = v.auth, i+1
		headers = append(append([]kv(nil), headers...), v.headers...)
		break
	}
	raw, err := urlT.RenderContext(ctx, data)
	if err != nil {
		return nil, err
	}
	if len(query) == 0 {
		r.url, err = st.urls.checked(raw)
	} else {
		r.url, err = withQuery(ctx, raw, query, data)
	}
	if err != nil {
		return nil, err
	}
	r.header = make(http.Header, len(headers)+3)
	// the values share one backing array (Header.Set makes a slice per
	// value); each is capped, so an Add to it copies instead of overwriting
	vals := make([]string, 0, len(headers)+3)
	set := func(k, v string) {
		vals = append(vals, v)
		r.header[textproto.CanonicalMIMEHeaderKey(k)] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set("User-Agent", "plumb/1")
	if bd != nil {
		if r.body, err = bd.render(ctx, data); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		set("Content-Type", bd.contentType)
		if p.gzipRequests {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(r.body)
			zw.Close()
			r.body = buf.Bytes()
			set("Content-Encoding", "gzip")
		}
	}
	for _, h := range headers {
		v, err := h.val.RenderContext(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", h.key, err)
		}
		set(h.key, v)
	}
	return r, nil
}

// renderURL renders a URL template.
func renderURL(ctx context.Context, t *template.Template, data map[string]any) (string, error) {
	u, err := parseURL(ctx, t, data)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func parseURL(ctx context.Context, t *template.Template, data map[string]any) (*url.URL, error) {
	raw, err := t.RenderContext(ctx, data)
	if err != nil {
		return nil, err
	}
	return checkURL(raw)
}

// checkURL parses a rendered URL, which must be an absolute http(s) URL.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q is not an absolute http(s) URL", raw)
	}
	return u, nil
}

// withQuery is the rendered URL raw, checked, with the step's query
// entries added to its own.
func withQuery(ctx context.Context, raw string, query []kv, data map[string]any) (string, error) {
	u, err := checkURL(raw)
	if err != nil {
		return "", err
	}
	var q strings.Builder
	q.WriteString(u.RawQuery)
	for _, e := range query {
		v, err := e.val.RenderContext(ctx, data)
		if err != nil {
			return "", fmt.Errorf("query %s: %w", e.key, err)
		}
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(url.QueryEscape(e.key))
		q.WriteByte('=')
		q.WriteString(url.QueryEscape(v))
	}
	u.RawQuery = q.String()
	return u.String(), nil
}

// urlMemo remembers the last URL a step rendered, checked and normalized
// (url.Parse, then String): most URLs come out the same for every lead
// (settings and literal text), and parsing one was a fifth of building a
// request. Safe for concurrent use; a different URL replaces it.
type urlMemo struct{ last atomic.Pointer[[2]string] }

// checked is checkURL(raw).String(), from the memo when raw is the last URL.
func (m *urlMemo) checked(raw string) (string, error) {
	if e := m.last.Load(); e != nil && e[0] == raw {
		return e[1], nil
	}
	u, err := checkURL(raw)
	if err != nil {
		return "", err
	}
	e := &[2]string{raw, u.String()}
	m.last.Store(e)
	return e[1], nil
}

func (b *body) render(ctx context.Context, data map[string]any) ([]byte, error) {
	switch b.kind {
	case bodyJSON:
		return b.json.appendJSON(ctx, nil, data)
	case bodyJSONText:
		s, err := b.text.RenderContext(ctx, data)
		if err != nil {
			return nil, err
		}
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("rendered json body is not valid JSON (check the template's quotes and commas)")
		}
		return []byte(s), nil
	case bodyForm:
		var f strings.Builder
		for i, e := range b.form {
			v, err := e.val.RenderContext(ctx, data)
			if err != nil {
				return nil, fmt.Errorf("form %s: %w", e.key, err)
			}
			if i > 0 {
				f.WriteByte('&')
			}
			f.WriteString(url.QueryEscape(e.key))
			f.WriteByte('=')
			f.WriteString(url.QueryEscape(v))
		}
		return []byte(f.String()), nil
	default:
		s, err := b.text.RenderContext(ctx, data)
		return []byte(s), err
	}
}

// eval renders a structured value to Go values.
func (v *value) eval(ctx context.Context, data map[string]any) (any, error) {
	switch v.kind {
	case 't':
		return v.tmpl.ValueContext(ctx, data)
	case 'o':
		m := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			x, err := v.vals[i].eval(ctx, data)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case 'a':
		out := make([]any, len(v.items))
		for i, it := range v.items {
			x, err := it.eval(ctx, data)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
	return v.lit, nil
}

// appendJSON renders a structured value as JSON, keeping the key order of
// the file. Values are marshalled, so lead data can never change the shape
// of the document.
func (v *value) appendJSON(ctx context.Context, buf []byte, data map[string]any) ([]byte, error) {
	switch v.kind {
	case 'o':
		buf = append(buf, '{')
		for i := range v.keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(append(buf, v.keyJSON[i]...), ':')
			var err error
			if buf, err = v.vals[i].appendJSON(ctx, buf, data); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	case 'a':
		buf = append(buf, '[')
		for i, it := range v.items {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = it.appendJSON(ctx, buf, data); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	}
	x, err := v.eval(ctx, data)
	if err != nil {
		return nil, err
	}
	// without HTML escaping: partners that sign or compare raw bodies see
	// `<`, `>` and `&` as written, as in a json: text body
	out, err := jsonw.AppendValue(buf, x)
	if err != nil {
		return nil, fmt.Errorf("value cannot be written as JSON: %v", err)
	}
	return out, nil
}

// readCapped reads the whole answer, refusing one larger than limit, and
// reserves the bytes it holds from the runner's response memory budget
// (released by the caller once the answer is judged). An answer that would
// pass the budget is an error, never a crash.
func readCapped(resp *http.Response, limit int64, mem *memBudget) (b []byte, reserved int64, err error) {
	if resp.ContentLength > limit {
		return nil, 0, &BodyTooLargeError{Limit: limit}
	}
	const step = 64 << 10
	grow := func(need int64) bool {
		need = min(need, limit+1)
		for reserved < need {
			n := min(max(need-reserved, step), limit+1-reserved)
			if n <= 0 || !mem.take(n) {
				return false
			}
			reserved += n
		}
		return true
	}
	if resp.ContentLength > 0 && !grow(resp.ContentLength) {
		return nil, reserved, &MemoryBudgetError{Budget: mem.max}
	}
	r := io.LimitReader(resp.Body, limit+1)
	buf := make([]byte, 0, min(max(resp.ContentLength, 512), limit+1))
	for {
		if len(buf) == cap(buf) {
			newCap := min(int64(cap(buf))*2, limit+1)
			if !grow(newCap) {
				return nil, reserved, &MemoryBudgetError{Budget: mem.max}
			}
			buf = slices.Grow(buf, int(newCap)-len(buf))
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, reserved, &BodyTooLargeError{Limit: limit}
		}
		if rerr == io.EOF {
			return buf, reserved, nil
		}
		if rerr != nil {
			return buf, reserved, fmt.Errorf("reading the response: %w", rerr)
		}
	}
}

// DefaultResponseMemory bounds, by default, the response bytes a Runner
// holds at once across all its leads.
const DefaultResponseMemory = 256 << 20

// memBudget is a runner-wide bound on response bytes held at once.
type memBudget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (m *memBudget) take(n int64) bool {
	if m == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+n > m.max {
		return false
	}
	m.used += n
	return true
}

func (m *memBudget) give(n int64) {
	if m == nil || n == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	m.mu.Unlock()
}

// MemoryBudgetError is an answer that did not fit in the runner's response
// memory budget (Config.MaxResponseMemory) next to the answers other leads
// were holding.
type MemoryBudgetError struct{ Budget int64 }

// Error implements error.
func (e *MemoryBudgetError) Error() string {
	return fmt.Sprintf("response memory budget of %d bytes in use by other answers (raise Config.MaxResponseMemory or lower the concurrency)", e.Budget)
}

// mergeKV is base with more's entries added, an entry of more replacing
// base's of the same key.
func mergeKV(base, more []kv) []kv {
	out := make([]kv, 0, len(base)+len(more))
	for _, b := range base {
		replaced := false
		for _, m := range more {
			if m.key == b.key {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, b)
		}
	}
	return append(out, more...)
}
