package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// mask is the masked form of a secret, wherever it is shown.
const mask = "****"

// longSecret is the length from which a secret's form is masked wherever
// it appears in free text. Shorter forms (a 4-digit PIN) are masked only
// where they stand alone: a whole URL query value, path segment, header
// value, JSON string or token between non-alphanumeric characters, so
// "1234" never turns 127.0.0.1:12345 into nonsense.
const longSecret = 8

// masker masks secret setting values, and every encoding in which a
// request carries them (URL query and path escaping, JSON and XML
// escaping, base64), structurally: in URLs by component, in headers by
// value, in JSON by string, in free text by token. It never rewrites
// serialised output, so it cannot corrupt it.
type masker struct {
	secrets []string
	// forms are every rendered form of every secret, longest first.
	forms []string
	exact map[string]bool
}

// with returns a masker for m's secrets and more: m's forms are reused,
// only the new secrets' are computed (a lead's redacted captures).
func (m *masker) with(more ...string) *masker {
	if m == nil {
		return newMasker(more)
	}
	out := &masker{exact: make(map[string]bool, len(m.exact)+10*len(more)),
		secrets: append(slices.Clip(m.secrets), more...), forms: slices.Clone(m.forms)}
	for f := range m.exact {
		out.exact[f] = true
	}
	out.add(more)
	return out
}

func newMasker(secrets []string) *masker {
	m := &masker{exact: map[string]bool{}, secrets: secrets}
	m.add(secrets)
	return m
}

// add computes the forms of secrets, longest first among all forms.
func (m *masker) add(secrets []string) {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, f := range secretForms(s) {
			if f != "" && !m.exact[f] {
				m.exact[f] = true
				m.forms = append(m.forms, f)
			}
		}
	}
	sort.SliceStable(m.forms, func(i, j int) bool { return len(m.forms[i]) > len(m.forms[j]) })
}

// secretForms lists the ways a secret s can appear in what plumb sends or
// shows.
func secretForms(s string) []string {
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	jsonText := strings.TrimSuffix(strings.TrimSuffix(js.String(), "\n"), `"`)
	jsonText = strings.TrimPrefix(jsonText, `"`)
	htmlJSON, _ := json.Marshal(s)
	var xs strings.Builder
	xml.EscapeText(&xs, []byte(s))
	b := []byte(s)
	return []string{s, url.QueryEscape(s), url.PathEscape(s), jsonText,
		strings.Trim(string(htmlJSON), `"`), xs.String(),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
}

func (m *masker) empty() bool { return m == nil || len(m.forms) == 0 }

// text masks secrets in free text: long forms anywhere, short ones where
// they stand as a token.
func (m *masker) text(s string) string {
	if m.empty() || s == "" {
		return s
	}
	if m.exact[s] {
		return mask
	}
	for _, f := range m.forms {
		if !strings.Contains(s, f) {
			continue
		}
		if len(f) >= longSecret {
			s = strings.ReplaceAll(s, f, mask)
			continue
		}
		s = replaceTokens(s, f)
	}
	return s
}

// replaceTokens replaces the occurrences of f in s that no letter or digit
// touches on either side.
func replaceTokens(s, f string) string {
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], f)
		if j < 0 {
			break
		}
		j += i
		end := j + len(f)
		if (j == 0 || !isAlnum(s[j-1])) && (end == len(s) || !isAlnum(s[end])) {
			b.WriteString(s[i:j])
			b.WriteString(mask)
		} else {
			b.WriteString(s[i:end])
		}
		i = end
	}
	if i == 0 {
		return s
	}
	b.WriteString(s[i:])
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// url masks a URL by component: the password, every path segment and
// query value that is (an encoding of) a secret, then free text.
func (m *masker) url(raw string) string {
	if m.empty() {
		return raw
	}
	// nothing in raw can be masked: no secret form in it, no userinfo (a
	// password is always masked) and no escapes ('%', '+') through which
	// a decoded segment or value could equal a secret
	if !strings.ContainsAny(raw, "@%+") && !m.inText(raw) {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return m.text(raw)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(m.text(u.User.Username()), "x")
		} else {
			u.User = url.User(m.text(u.User.Username()))
		}
	}
	if u.RawPath != "" || u.Path != "" {
		segs := strings.Split(u.EscapedPath(), "/")
		for i, sg := range segs {
			dec, _ := url.PathUnescape(sg)
			if m.exact[sg] || m.exact[dec] {
				segs[i] = mask
			} else {
				segs[i] = m.text(sg)
			}
		}
		p := strings.Join(segs, "/")
		u.RawPath = p
		u.Path, _ = url.PathUnescape(p)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			k, v, found := strings.Cut(kv, "=")
			if !found {
				parts[i] = m.text(kv)
				continue
			}
			dec, _ := url.QueryUnescape(v)
			if m.exact[v] || m.exact[dec] {
				v = mask
			} else {
				v = m.text(v)
			}
			parts[i] = k + "=" + v
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	s := u.String()
	if u.User != nil {
		if _, has := u.User.Password(); has {
			s = strings.Replace(s, ":x@", ":"+mask+"@", 1)
		}
	}
	return s
}

// header masks header values: credentials that auth put in (the names in
// cred, and Authorization / Proxy-Authorization) whole, keeping a scheme
// word; other values equal to a secret whole; the rest as text.
func (m *masker) header(h http.Header, cred map[string]bool) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		for _, v := range vs {
			switch {
			case k == "Authorization" || k == "Proxy-Authorization" || cred[k]:
				scheme, _, found := strings.Cut(v, " ")
				if v = mask; found && k != "Cookie" {
					v = scheme + " " + mask
				}
			case k == "Referer":
				v = m.url(v)
			case m.exact[v]:
				v = mask
			default:
				v = m.text(v)
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

// body masks a request or response body for display: JSON by string
// value, forms by field, anything else as text.
func (m *masker) body(b []byte) string {
	if m.empty() || len(b) == 0 {
		return string(b)
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			masked := m.value(v)
			if reflect.DeepEqual(masked, v) {
				return string(b) // nothing to mask: keep the bytes as sent
			}
			if out, err := marshalJSON(masked); err == nil {
				return string(out)
			}
		}
	}
	if q, err := url.ParseQuery(string(b)); err == nil && len(q) > 0 && !bytes.ContainsAny(b, " \n<{") {
		return m.url("?" + string(b))[1:]
	}
	return m.text(string(b))
}

// value returns v with every string masked: whole when it is a secret's
// form, as text otherwise. Maps and lists are copied, never changed.
func (m *masker) value(v any) any {
	if m.empty() {
		return v
	}
	switch t := v.(type) {
	case string:
		if m.exact[t] {
			return mask
		}
		return m.text(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = m.value(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = m.value(x)
		}
		return out
	}
	return v
}

// valueMap is value for a map (nil stays nil). A map holding nothing to
// mask is returned as it is, not copied.
func (m *masker) valueMap(v map[string]any) map[string]any {
	if v == nil || m.empty() || !m.changes(v) {
		return v
	}
	return m.value(v).(map[string]any)
}

// inText reports whether a secret form appears in s (text can change s
// only then).
func (m *masker) inText(s string) bool {
	for _, f := range m.forms {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// changes reports whether value would mask something in v.
func (m *masker) changes(v any) bool {
	switch t := v.(type) {
	case string:
		return m.inText(t)
	case map[string]any:
		for _, x := range t {
			if m.changes(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if m.changes(x) {
				return true
			}
		}
	}
	return false
}
