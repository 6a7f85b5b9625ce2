package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/plumbhq/plumb/internal/jsonw"
)

// mask is the masked form of a secret, wherever it is shown.
const mask = "****"

// longSecret is the length (in bytes) from which a secret is masked
// wherever one of its forms appears, in any ASCII letter case, and so is
// every long enough piece of a form (see minRun). A shorter secret (a
// 4-digit PIN) is masked only where a form stands alone, exactly: a whole
// URL query value, path segment, header value, JSON string or token
// between non-alphanumeric characters, so "1234" never turns
// 127.0.0.1:12345 into nonsense.
const longSecret = 8

// gramLen is the length of the pieces forms are indexed by: the shortest
// run of a form that can be masked.
const gramLen = longSecret

// maxRun is the longest a piece of a form may be and still be shown.
const maxRun = 12

// minRun is how long a run of the form f must be to be masked: half the
// form (rounded down), at least gramLen and at most maxRun. So no piece
// shown holds half a secret, or 12 characters of it.
func minRun(f string) int { return min(max(len(f)/2, gramLen), maxRun) }

// masker masks secrets, and every encoding in which a request or an answer
// may carry them (see secretForms), structurally: in URLs by component, in
// headers by value, in JSON by string, in free text by token. It never
// rewrites serialised output, so it cannot corrupt it.
//
// A masker is a stack of secret sets — the runner's (settings, auth
// credentials), a lead's redacted captures — plus the runner's live set
// (tokens it learns while it runs), read afresh by every call, so a masker
// made before a token was fetched masks it once it is.
type masker struct {
	sets []*secretSet
	live *liveSecrets
}

// newMasker returns a masker for secrets.
func newMasker(secrets []string) *masker {
	return &masker{sets: []*secretSet{newSecretSet(secrets)}}
}

// with returns a masker for m's secrets and more: m's sets are shared, only
// the new secrets' forms are computed (a lead's redacted captures).
func (m *masker) with(more ...string) *masker {
	if m == nil {
		return newMasker(more)
	}
	return &masker{sets: append(slices.Clip(m.sets), newSecretSet(more)), live: m.live}
}

// each calls fn for every set of m, the live one last; it stops when fn
// returns true and reports whether one did.
func (m *masker) each(fn func(*secretSet) bool) bool {
	if m == nil {
		return false
	}
	for _, s := range m.sets {
		if !s.empty() && fn(s) {
			return true
		}
	}
	if s := m.live.current(); !s.empty() {
		return fn(s)
	}
	return false
}

func (m *masker) empty() bool {
	return !m.each(func(*secretSet) bool { return true })
}

// secretSet is the compiled forms of a group of secrets: the long ones
// indexed by their 8-byte pieces (folded to lower case), the short ones as
// they are.
type secretSet struct {
	forms []string // folded forms of the long secrets
	runs  []int    // minRun of each form
	grams map[uint64][]gramRef
	bloom []uint64 // a bit per hash of a gram: most text misses here
	shift uint
	short []string        // forms of the short secrets, longest first
	exact map[string]bool // the same, to test whole values
}

// gramRef is where a gram starts in a form.
type gramRef struct{ form, off int32 }

func (s *secretSet) empty() bool { return s == nil || len(s.forms)+len(s.short) == 0 }

func newSecretSet(secrets []string) *secretSet {
	s := &secretSet{exact: map[string]bool{}}
	seen, folded := map[string]bool{}, map[string]bool{}
	for _, sec := range secrets {
		if sec == "" || seen[sec] {
			continue
		}
		seen[sec] = true
		if len(sec) < longSecret {
			for _, f := range secretForms(sec, false) {
				if f != "" && !s.exact[f] {
					s.exact[f] = true
					s.short = append(s.short, f)
				}
			}
			continue
		}
		for _, f := range secretForms(sec, true) {
			if f = foldASCII(f); len(f) >= gramLen && !folded[f] {
				folded[f] = true
				s.forms = append(s.forms, f)
			}
		}
	}
	sort.SliceStable(s.short, func(i, j int) bool { return len(s.short[i]) > len(s.short[j]) })
	s.index()
	return s
}

// index builds the gram index and its bloom filter.
func (s *secretSet) index() {
	n := 0
	for _, f := range s.forms {
		n += len(f) - gramLen + 1
	}
	if n == 0 {
		return
	}
	bits := uint(6)
	for 1<<bits < 64*n && bits < 20 { // about 1.5% of text positions reach the map
		bits++
	}
	s.shift = 64 - bits
	s.bloom = make([]uint64, 1<<(bits-6))
	s.grams = make(map[uint64][]gramRef, n)
	s.runs = make([]int, len(s.forms))
	for i, f := range s.forms {
		s.runs[i] = minRun(f)
		for off := 0; off+gramLen <= len(f); off++ {
			g := load64(f, off)
			h := s.hash(g)
			s.bloom[h>>6] |= 1 << (h & 63)
			s.grams[g] = append(s.grams[g], gramRef{int32(i), int32(off)})
		}
	}
}

func (s *secretSet) hash(g uint64) uint64 { return (g * 0x9E3779B97F4A7C15) >> s.shift }

// secretForms lists the ways a secret can appear in what plumb sends or
// shows: as it is; URL query- and path-escaped; JSON-escaped (with and
// without HTML escapes); XML-escaped; base64 (standard and URL alphabets,
// padded or not); hex. With inside, also the base64 of the secret inside a
// longer encoded value (its middle at each of the three byte alignments),
// for long secrets.
func secretForms(s string, inside bool) []string {
	js := jsonw.AppendString(nil, s)
	jsonText := string(js[1 : len(js)-1])
	htmlJSON, _ := json.Marshal(s)
	var xs strings.Builder
	xml.EscapeText(&xs, []byte(s))
	b := []byte(s)
	out := []string{s, url.QueryEscape(s), url.PathEscape(s), jsonText,
		strings.Trim(string(htmlJSON), `"`), xs.String(),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b))}
	if inside {
		for k := 1; k <= 2; k++ {
			shifted := append(make([]byte, k), b...)
			lo, hi := (8*k+5)/6, 8*(k+len(b))/6
			out = append(out, base64.RawStdEncoding.EncodeToString(shifted)[lo:hi],
				base64.RawURLEncoding.EncodeToString(shifted)[lo:hi])
		}
	}
	return out
}

// load64 reads the 8 bytes of s at i, folded to lower case, as a number
// (s[i] in the lowest byte).
func load64(s string, i int) uint64 {
	var g uint64
	for j := i + gramLen - 1; j >= i; j-- {
		g = g<<8 | uint64(lowerASCII[s[j]])
	}
	return g
}

// lowerASCII maps each byte to itself, ASCII upper-case letters to lower
// case.
var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

func lower(c byte) byte { return lowerASCII[c] }

// foldASCII lower-cases the ASCII letters of s (bytes elsewhere kept, so
// offsets do not move).
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return s
}

// span is a byte range [a, b) of text to mask.
type span struct{ a, b int }

// scan appends to out the runs of s (compared without ASCII case) that are
// pieces of one of the set's forms at least as long as the form's minRun.
func (set *secretSet) scan(s string, out []span) []span {
	if len(set.forms) == 0 {
		return out
	}
	g := load64(s, 0) << 8 // rolled in: each position adds its last byte
	for i := 0; i+gramLen <= len(s); i++ {
		g = g>>8 | uint64(lowerASCII[s[i+gramLen-1]])<<56
		if h := set.hash(g); set.bloom[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		end := 0
		for _, r := range set.grams[g] {
			f := set.forms[r.form]
			a, fa := i, int(r.off)
			for a > 0 && fa > 0 && lower(s[a-1]) == f[fa-1] {
				a, fa = a-1, fa-1
			}
			b, fb := i+gramLen, int(r.off)+gramLen
			for b < len(s) && fb < len(f) && lower(s[b]) == f[fb] {
				b, fb = b+1, fb+1
			}
			if b-a >= set.runs[r.form] {
				out = append(out, span{a, b})
				end = max(end, b)
			}
		}
		if end-gramLen > i {
			// a run reaching past end has its last gram at end-7 or later
			i = end - gramLen
			g = load64(s, i)
		}
	}
	return out
}

// spans returns the merged runs of s that are pieces of long secrets,
// widened to whole UTF-8 characters.
func (m *masker) spans(s string) []span {
	if len(s) < gramLen {
		return nil
	}
	var out []span
	m.each(func(set *secretSet) bool {
		out = set.scan(s, out)
		return false
	})
	if len(out) == 0 {
		return nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].a < out[j].a })
	merged := out[:1]
	for _, sp := range out[1:] {
		if last := &merged[len(merged)-1]; sp.a <= last.b {
			last.b = max(last.b, sp.b)
		} else {
			merged = append(merged, sp)
		}
	}
	for i := range merged {
		for merged[i].a > 0 && !utf8.RuneStart(s[merged[i].a]) {
			merged[i].a--
		}
		for merged[i].b < len(s) && !utf8.RuneStart(s[merged[i].b]) {
			merged[i].b++
		}
	}
	return merged
}

// text masks secrets in free text: long secrets and long enough pieces of
// them anywhere, in any letter case; short ones where they stand as a
// token.
func (m *masker) text(s string) string {
	if s == "" || m.empty() {
		return s
	}
	if sp := m.spans(s); len(sp) > 0 {
		var b strings.Builder
		b.Grow(len(s))
		at := 0
		for _, x := range sp {
			b.WriteString(s[at:x.a])
			b.WriteString(mask)
			at = x.b
		}
		b.WriteString(s[at:])
		s = b.String()
	}
	m.each(func(set *secretSet) bool {
		for _, f := range set.short {
			if strings.Contains(s, f) {
				s = replaceTokens(s, f)
			}
		}
		return false
	})
	return s
}

// clip masks s, then cuts it to at most n bytes (at a character boundary)
// and marks the cut with "…". Masking first, a cut never leaves a piece of
// a secret that masking the whole would have caught.
func (m *masker) clip(s string, n int) string {
	s = m.text(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// hit reports whether text would mask something in s.
func (m *masker) hit(s string) bool {
	if s == "" || m.empty() {
		return false
	}
	if len(m.spans(s)) > 0 {
		return true
	}
	return m.each(func(set *secretSet) bool {
		for _, f := range set.short {
			if strings.Contains(s, f) && replaceTokens(s, f) != s {
				return true
			}
		}
		return false
	})
}

// whole reports whether s is, as a whole, a secret's form: exactly, for a
// short secret; as one masked run covering it, for a long one.
func (m *masker) whole(s string) bool {
	if s == "" {
		return false
	}
	return m.each(func(set *secretSet) bool { return set.exact[s] }) ||
		(len(s) >= gramLen && slices.Equal(m.spans(s), []span{{0, len(s)}}))
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

// component masks one escaped URL component (a path segment, a query
// value): whole when it, or what it decodes to, is a secret or holds one
// only once decoded; as text otherwise.
func (m *masker) component(esc, dec string) string {
	if m.whole(esc) || m.whole(dec) {
		return mask
	}
	if t := m.text(esc); t != esc {
		return t
	}
	if dec != esc && m.hit(dec) {
		return mask
	}
	return esc
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
	if !strings.ContainsAny(raw, "@%+") && !m.hit(raw) {
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
			segs[i] = m.component(sg, dec)
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
			parts[i] = m.text(k) + "=" + m.component(v, dec)
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if t := m.text(u.Fragment); t != u.Fragment {
		u.Fragment, u.RawFragment = t, ""
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
			case m.whole(v):
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
	if len(b) == 0 || m.empty() {
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
			if out, err := jsonw.Marshal(masked); err == nil {
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
		if m.whole(t) {
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

// document is value for a whole document shown to a user: map keys are
// masked as text too (a key that masks like another one already there is
// told apart by a number, so no field is lost).
func (m *masker) document(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		var hidden []string
		for k, x := range t {
			if m.hit(k) {
				hidden = append(hidden, k)
			} else {
				out[k] = m.document(x)
			}
		}
		slices.Sort(hidden)
		next := map[string]int{}
		taken := func(k string) bool { _, ok := out[k]; return ok }
		for _, k := range hidden {
			out[freeKey(m.text(k), next, taken)] = m.document(t[k])
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = m.document(x)
		}
		return out
	}
	return m.value(v)
}

// freeKey returns k, or k with " #2", " #3"… when k is taken already;
// next keeps, for each k, the number to try first, so a document of many
// keys that mask alike costs linear time, not quadratic.
func freeKey(k string, next map[string]int, taken func(string) bool) string {
	key := k
	for n := max(next[k], 2); ; n++ {
		if !taken(key) {
			next[k] = n
			return key
		}
		key = k + " #" + strconv.Itoa(n)
	}
}

// valueMap is value for a map (nil stays nil). A map holding nothing to
// mask is returned as it is, not copied.
func (m *masker) valueMap(v map[string]any) map[string]any {
	if v == nil || m.empty() || !m.changes(v) {
		return v
	}
	return m.value(v).(map[string]any)
}

// changes reports whether value would mask something in v.
func (m *masker) changes(v any) bool {
	switch t := v.(type) {
	case string:
		return m.hit(t)
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
