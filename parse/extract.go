package parse

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/antchfx/xmlquery"
	"github.com/antchfx/xpath"
	"github.com/tidwall/gjson"
)

// Spec is one capture as written in YAML. Exactly one of JSON, XPath, Split, Regex,
// Header and Status must be set.
type Spec struct {
	JSON   string // gjson path (https://github.com/tidwall/gjson/blob/master/SYNTAX.md)
	XPath  string // XPath 1.0; node-set → inner text of first node (or all with All); number/string/bool results as is
	Split  string // delimiter; with Index (negative counts from the end)
	Index  int
	Regex  string // RE2; with Group: "" (default: 1 if the pattern has groups else 0), a number "2", or a group name
	Group  string
	Header string // response header name (canonicalised)
	Status bool   // the HTTP status code (int)
	All    bool   // for json/xpath/regex (and split/header): return every match as []any
	Type   string // "", "string", "number", "int", "bool" — coercion of the extracted value
	Trim   *bool  // trim surrounding whitespace of text results (default true); JSON strings are never trimmed
}

// Namespaces maps XPath prefixes to namespace URIs (declared once per step).
type Namespaces map[string]string

// Extractor is a compiled Spec; immutable and safe for concurrent use.
type Extractor interface {
	// Extract reads the value from d. found is false when the response does not hold
	// it (missing path, no match, index out of range); err is set when the response
	// cannot be read that way (invalid JSON or XML) or the value cannot be coerced.
	Extract(d *Doc) (v any, found bool, err error)
	// Kind names the extractor: "json", "xpath", "split", "regex", "header" or "status".
	Kind() string
}

// Extractor kinds, as returned by Extractor.Kind.
const (
	KindJSON   = "json"
	KindXPath  = "xpath"
	KindSplit  = "split"
	KindRegex  = "regex"
	KindHeader = "header"
	KindStatus = "status"
)

const kindList = "json, xpath, split, regex, header, status"

// Compile checks s and compiles it (XPath expression, regular expression, group,
// coercion type) so that nothing is compiled per response. ns is used by xpath only.
func Compile(s Spec, ns Namespaces) (Extractor, error) {
	var set []string
	if s.JSON != "" {
		set = append(set, KindJSON)
	}
	if s.XPath != "" {
		set = append(set, KindXPath)
	}
	if s.Split != "" {
		set = append(set, KindSplit)
	}
	if s.Regex != "" {
		set = append(set, KindRegex)
	}
	if s.Header != "" {
		set = append(set, KindHeader)
	}
	if s.Status {
		set = append(set, KindStatus)
	}
	switch len(set) {
	case 0:
		return nil, errors.New("capture needs one of " + kindList)
	case 1:
	default:
		return nil, fmt.Errorf("capture sets %s; use exactly one of %s", joinAnd(set), kindList)
	}
	kind := set[0]
	if err := checkType(s.Type); err != nil {
		return nil, err
	}
	if s.Group != "" && kind != KindRegex {
		return nil, fmt.Errorf("group only applies to regex captures (this one is %s)", kind)
	}
	if s.Index != 0 && kind != KindSplit {
		return nil, fmt.Errorf("index only applies to split captures (this one is %s)", kind)
	}
	if s.All && kind == KindStatus {
		return nil, errors.New("all does not apply to status captures")
	}
	b := base{typ: s.Type, all: s.All, trim: s.Trim == nil || *s.Trim}
	switch kind {
	case KindJSON:
		if err := CheckJSONPath(s.JSON); err != nil {
			return nil, err
		}
		b.desc = fmt.Sprintf("json %q", s.JSON)
		return &jsonExtractor{base: b, path: s.JSON}, nil
	case KindXPath:
		b.desc = fmt.Sprintf("xpath %q", s.XPath)
		return compileXPath(b, s.XPath, ns)
	case KindSplit:
		b.desc = fmt.Sprintf("split %q", s.Split)
		if s.All && s.Index != 0 {
			return nil, fmt.Errorf("%s: index and all cannot be used together", b.desc)
		}
		return &splitExtractor{base: b, sep: s.Split, index: s.Index}, nil
	case KindRegex:
		b.desc = fmt.Sprintf("regex %q", s.Regex)
		return compileRegex(b, s.Regex, s.Group)
	case KindHeader:
		b.desc = fmt.Sprintf("header %q", s.Header)
		if !httpguts.ValidHeaderFieldName(s.Header) {
			return nil, fmt.Errorf("%s: not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", b.desc)
		}
		return &headerExtractor{base: b, name: http.CanonicalHeaderKey(s.Header)}, nil
	default:
		b.desc = "status"
		return &statusExtractor{base: b}, nil
	}
}

func joinAnd(s []string) string {
	if len(s) == 2 {
		return "both " + s[0] + " and " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// base holds what every extractor shares: description for errors, coercion, All, Trim.
type base struct {
	desc string
	typ  string
	all  bool
	trim bool
}

// finish applies coercion to an extracted value (each element with All).
func (b *base) finish(v any, found bool, err error) (any, bool, error) {
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", b.desc, err)
	}
	if !found {
		return nil, false, nil
	}
	if b.typ == TypeAny {
		return v, true, nil
	}
	if list, ok := v.([]any); ok && b.all {
		out := make([]any, len(list))
		for i, e := range list {
			c, err := Coerce(e, b.typ)
			if err != nil {
				return nil, false, fmt.Errorf("%s: item %d: %w", b.desc, i, err)
			}
			out[i] = c
		}
		return out, true, nil
	}
	c, err := Coerce(v, b.typ)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", b.desc, err)
	}
	return c, true, nil
}

func (b *base) text(s string) string {
	if b.trim {
		return strings.TrimSpace(s)
	}
	return s
}

func errNilDoc() error { return errors.New("no response to extract from") }

// ---- json ----

type jsonExtractor struct {
	base
	path string
}

func (e *jsonExtractor) Kind() string { return KindJSON }

func (e *jsonExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	if d.empty() {
		return nil, false, nil // nothing to find: a default stands in, a required capture fails
	}
	if err := d.JSONValid(); err != nil {
		return e.finish(nil, false, err)
	}
	r := gjson.GetBytes(d.content, e.path)
	if !r.Exists() {
		return nil, false, nil
	}
	if e.all {
		if r.IsArray() {
			list := r.Array()
			out := make([]any, len(list))
			for i, x := range list {
				v, err := e.scalar(x)
				if err != nil {
					return e.finish(nil, false, err)
				}
				out[i] = v
			}
			return e.finish(out, true, nil)
		}
		v, err := e.scalar(r)
		return e.finish([]any{v}, err == nil, err)
	}
	v, err := e.scalar(r)
	return e.finish(v, err == nil, err)
}

// scalar decodes r; for numbers coerced to int or string it keeps the literal text
// so that integers beyond 2^53 (ids) do not lose precision through float64.
func (e *jsonExtractor) scalar(r gjson.Result) (any, error) {
	if r.Type == gjson.Number && (e.typ == TypeInt || (e.typ == TypeString && isIntLiteral(r.Raw))) {
		return r.Raw, nil
	}
	return jsonValue(r)
}

func isIntLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// jsonValue decodes a gjson result. Objects and arrays are decoded with
// encoding/json, which is linear in the input (gjson's Result.Value is quadratic on
// deeply nested values) and bounds nesting depth.
func jsonValue(r gjson.Result) (any, error) {
	switch r.Type {
	case gjson.Null:
		return nil, nil
	case gjson.False:
		return false, nil
	case gjson.True:
		return true, nil
	case gjson.Number:
		return r.Num, nil
	case gjson.String:
		return r.Str, nil
	}
	var v any
	if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
		return nil, fmt.Errorf("cannot decode the selected JSON value: %v", err)
	}
	return v, nil
}

// ---- xpath ----

// xpathExtractor evaluates a compiled XPath expression. An *xpath.Expr keeps
// evaluation state inside its query tree (Evaluate mutates it, and the iterator it
// returns shares function arguments with it), so it is not safe for concurrent use:
// each evaluation takes an Expr of its own from a pool, compiled from the same,
// already validated, source.
type xpathExtractor struct {
	base
	expr  string
	ns    map[string]string
	exprs sync.Pool // of *xpath.Expr
}

func compileXPath(b base, expr string, ns Namespaces) (Extractor, error) {
	for p, uri := range ns {
		if p == "" {
			return nil, fmt.Errorf("%s: namespaces has an empty prefix for %q; XPath 1.0 has no default namespace, so pick a prefix (for example d) and write d:Name", b.desc, uri)
		}
		if uri == "" {
			return nil, fmt.Errorf("%s: namespace prefix %q has an empty URI", b.desc, p)
		}
	}
	// Always a non-nil map: with nil, antchfx/xpath would silently match prefixes
	// literally instead of reporting an undeclared one.
	nsCopy := make(map[string]string, len(ns))
	maps.Copy(nsCopy, ns)
	first, err := buildXPath(expr, nsCopy)
	if err != nil {
		return nil, xpathCompileError(b.desc, err, ns)
	}
	e := &xpathExtractor{base: b, expr: expr, ns: nsCopy}
	e.exprs.New = func() any {
		x, err := buildXPath(e.expr, e.ns)
		if err != nil {
			return nil // cannot happen: the same source compiled at load time
		}
		return x
	}
	e.exprs.Put(first)
	return e, nil
}

// buildXPath compiles with the namespaces, turning any panic into an error.
func buildXPath(expr string, ns map[string]string) (x *xpath.Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return xpath.CompileWithNS(expr, ns)
}

func xpathCompileError(desc string, err error, ns Namespaces) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "prefix "); ok {
		if prefix, ok := strings.CutSuffix(rest, " not defined."); ok {
			declared := "none"
			if len(ns) > 0 {
				declared = strings.Join(slices.Sorted(maps.Keys(ns)), ", ")
			}
			return fmt.Errorf("%s: namespace prefix %q is not declared; add it to the step's namespaces (declared: %s)", desc, prefix, declared)
		}
	}
	return fmt.Errorf("%s: invalid XPath: %s (XPath 1.0; check brackets, quotes and function names, e.g. //Result/Score or count(//Item))", desc, strings.TrimSuffix(msg, "."))
}

func (e *xpathExtractor) Kind() string { return KindXPath }

func (e *xpathExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	if d.empty() {
		return nil, false, nil // nothing to find, as for JSON
	}
	root, err := d.XMLRoot()
	if err != nil {
		return e.finish(nil, false, err)
	}
	return e.finish(e.eval(root))
}

func (e *xpathExtractor) eval(root *xmlquery.Node) (v any, found bool, err error) {
	x, _ := e.exprs.Get().(*xpath.Expr)
	if x == nil {
		return nil, false, errors.New("could not compile XPath expression")
	}
	defer func() {
		// The xpath package panics on some type errors found only at evaluation
		// (e.g. a function given a node-set it cannot use); the Expr's state is then
		// unknown, so it is dropped rather than returned to the pool.
		if r := recover(); r != nil {
			v, found, err = nil, false, fmt.Errorf("evaluating XPath: %v", r)
			return
		}
		e.exprs.Put(x)
	}()
	switch r := x.Evaluate(xmlquery.CreateXPathNavigator(root)).(type) {
	case *xpath.NodeIterator:
		var list []any
		for r.MoveNext() {
			s := e.text(nodeText(r.Current()))
			if !e.all {
				return s, true, nil
			}
			list = append(list, s)
		}
		return list, len(list) > 0, nil
	case float64:
		if math.IsNaN(r) {
			return nil, false, nil
		}
		return e.wrap(r), true, nil
	case string:
		return e.wrap(e.text(r)), true, nil
	case bool:
		return e.wrap(r), true, nil
	default:
		return nil, false, fmt.Errorf("unexpected XPath result of type %T", r)
	}
}

func (b *base) wrap(v any) any {
	if b.all {
		return []any{v}
	}
	return v
}

// nodeText is the XPath string-value of a node: inner text for elements, text and
// CDATA (xmlquery's Value drops CDATA), the value for attributes and comments.
func nodeText(nav xpath.NodeNavigator) string {
	if xn, ok := nav.(*xmlquery.NodeNavigator); ok {
		switch xn.NodeType() {
		case xpath.ElementNode, xpath.TextNode, xpath.RootNode:
			return xn.Current().InnerText()
		}
	}
	return nav.Value()
}

// ---- split ----

type splitExtractor struct {
	base
	sep   string
	index int
}

func (e *splitExtractor) Kind() string { return KindSplit }

func (e *splitExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	body := e.text(d.bodyText())
	if e.all {
		parts := strings.Split(body, e.sep)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = e.text(p)
		}
		return e.finish(out, true, nil)
	}
	part, ok := nthPart(body, e.sep, e.index)
	if !ok {
		return nil, false, nil
	}
	return e.finish(e.text(part), true, nil)
}

// nthPart returns the i-th part of s split by sep (negative i counts from the end)
// without splitting the whole string.
func nthPart(s, sep string, i int) (string, bool) {
	if i >= 0 {
		for ; i > 0; i-- {
			_, after, ok := strings.Cut(s, sep)
			if !ok {
				return "", false
			}
			s = after
		}
		before, _, _ := strings.Cut(s, sep)
		return before, true
	}
	for ; i < -1; i++ {
		j := strings.LastIndex(s, sep)
		if j < 0 {
			return "", false
		}
		s = s[:j]
	}
	if j := strings.LastIndex(s, sep); j >= 0 {
		return s[j+len(sep):], true
	}
	return s, true
}

// ---- regex ----

type regexExtractor struct {
	base
	re    *regexp.Regexp
	group int
}

func compileRegex(b base, pattern, group string) (Extractor, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		return nil, fmt.Errorf("%s: invalid regular expression: %s (RE2 syntax: no lookaround or backreferences; single-quote the pattern in YAML so backslashes survive)", b.desc, msg)
	}
	n := re.NumSubexp()
	g := 0
	switch {
	case group == "":
		if n > 0 {
			g = 1
		}
	case isIntLiteral(group):
		g, err = strconv.Atoi(group)
		if err != nil || g < 0 || g > n {
			return nil, fmt.Errorf("%s: group %s is out of range: the pattern has %d group(s), so use 0 (whole match) to %d", b.desc, group, n, n)
		}
	default:
		g = re.SubexpIndex(group)
		if g < 0 {
			var names []string
			for _, name := range re.SubexpNames() {
				if name != "" {
					names = append(names, name)
				}
			}
			hint := "the pattern has no named groups; name one with (?P<" + group + ">...) or use a number"
			if len(names) > 0 {
				hint = "named groups: " + strings.Join(names, ", ")
			}
			return nil, fmt.Errorf("%s: unknown group name %q (%s)", b.desc, group, hint)
		}
	}
	return &regexExtractor{base: b, re: re, group: g}, nil
}

func (e *regexExtractor) Kind() string { return KindRegex }

func (e *regexExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	body := d.content
	lo, hi := 2*e.group, 2*e.group+1
	if !e.all {
		m := e.re.FindSubmatchIndex(body)
		if m == nil || m[lo] < 0 {
			return nil, false, nil // no match, or the group did not take part
		}
		return e.finish(e.text(string(body[m[lo]:m[hi]])), true, nil)
	}
	var out []any
	for _, m := range e.re.FindAllSubmatchIndex(body, -1) {
		if m[lo] >= 0 {
			out = append(out, e.text(string(body[m[lo]:m[hi]])))
		}
	}
	if len(out) == 0 {
		return nil, false, nil
	}
	return e.finish(out, true, nil)
}

// ---- header ----

type headerExtractor struct {
	base
	name string // canonical
}

func (e *headerExtractor) Kind() string { return KindHeader }

func (e *headerExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	vals := e.lookup(d.resp.Header)
	if len(vals) == 0 {
		return nil, false, nil
	}
	if !e.all {
		return e.finish(e.text(vals[0]), true, nil)
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = e.text(v)
	}
	return e.finish(out, true, nil)
}

// lookup finds the header by its canonical key, falling back to a case-insensitive
// scan for maps built by hand with non-canonical keys.
func (e *headerExtractor) lookup(h http.Header) []string {
	if v, ok := h[e.name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, e.name) {
			return v
		}
	}
	return nil
}

// ---- status ----

type statusExtractor struct{ base }

func (e *statusExtractor) Kind() string { return KindStatus }

// Extract returns the status code; a zero status (no response) is not found.
func (e *statusExtractor) Extract(d *Doc) (any, bool, error) {
	if d == nil {
		return e.finish(nil, false, errNilDoc())
	}
	if d.resp.Status == 0 {
		return nil, false, nil
	}
	return e.finish(d.resp.Status, true, nil)
}
