package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
)

// Mode says how the output of each action is escaped for where it lands.
type Mode int

const (
	// Plain writes values as text without escaping: nil is "", numbers
	// never use exponent notation (1e6 is "1000000").
	Plain Mode = iota
	// JSON is raw JSON text. An action inside a string literal is escaped
	// as string content; an action outside one writes the JSON encoding of
	// its typed value (true, 42, null, "text", {...}).
	JSON
	// XML is XML text or attribute values: & < > " ' are escaped, characters
	// not allowed in XML 1.0 become U+FFFD. Inside <![CDATA[...]]> the value
	// is written raw with "]]>" split; actions in comments or <?...?> are
	// compile errors.
	XML
	// URL is a whole URL. Only settings and literal text may write its
	// scheme, host and port, and only settings may decide which literal
	// text is written there: an action reading other data there, or an
	// if/with/range on other data around them, is a compile error (unless
	// AllowHosts). An action before any literal text
	// is the base (scheme://host/prefix from settings, or empty) and is
	// written as is; data right after the base, before any "/", is escaped so it
	// cannot add "@", ":" or a ".host" suffix (every byte but letters,
	// digits, - _ ~ is percent-encoded) and Render fails if it would still
	// change the origin. An action in the path or fragment is
	// url.PathEscape'd and one in the query url.QueryEscape'd, so a value
	// can never add path segments, query parameters or a fragment; and
	// Render fails (ErrDotSegment) when data makes a path segment that a
	// server decoding %2E, %2F or '\' would read as "." or "..". There is
	// no opt-out.
	URL
	// Header is an HTTP header value: output containing CR, LF or NUL fails
	// the render.
	Header
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Plain:
		return "plain"
	case JSON:
		return "json"
	case XML:
		return "xml"
	case URL:
		return "url"
	case Header:
		return "header"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ErrMissing is matched (errors.Is) by render errors caused by a reference
// to a field that is not in the data.
var ErrMissing = errors.New("missing field")

// Set holds the function map shared by the templates it compiles. It is
// built once by New and safe for concurrent use.
type Set struct {
	now func() time.Time
	// base holds the function table (and options) every template of the
	// set shares: the templates are added to its namespace under names
	// unique in the set (ns counts them; mu guards the namespace), so the
	// table of about 200 functions is built once per set, not copied into
	// each template (it was most of a plan's live heap, scanned by every
	// GC). base itself is never executed; {{template}} is refused, so the
	// names are never looked up.
	base   *template.Template
	mu     sync.Mutex
	ns     int
	slow   bool           // tests: always execute through text/template
	extra  map[string]any // WithFuncs: the embedder's functions
	budget budget         // WithBudget: the work of one render
}

// Option configures a Set.
type Option func(*Set)

// WithClock sets the clock used by now, ago and age (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Set) {
		if now != nil {
			s.now = now
		}
	}
}

// New builds a Set: sprig's text functions minus the unsafe ones, plus the
// plumb helpers listed in the package documentation.
func New(opts ...Option) *Set {
	s := &Set{now: time.Now, budget: budget{steps: MaxSteps, work: MaxWork}}
	for _, o := range opts {
		o(s)
	}
	s.base = template.New("").Option("missingkey=error").Funcs(s.funcMap())
	return s
}

// Template is a compiled template. It is immutable and safe for concurrent use.
type Template struct {
	name    string
	src     string
	mode    Mode
	literal bool
	text    string             // the output when literal
	tmpl    *template.Template // escaped output
	single  *template.Template // captures the typed value; nil unless one action
	fast    []segment          // non-nil when only text and plain references
	isOne   bool               // exactly one output action
	refs    []string
	refAt   []Ref // refs with where each is first read
	budget  budget

	// URL mode: trustedOnly renders the URL without the data written right
	// after its base (nil when there is none); Render requires both to
	// have the same origin. With AllowHosts the host is checked too.
	trustedOnly *Template
	checkPath   bool // data may land in the path: refuse dot segments
	allowHosts  []string
	hosts       []hostPattern // allowHosts, parsed
	hostsSet    bool
}

// Compile parses src once. name identifies the template in errors. A parse
// or compile error is an *Error.
//
// In URL mode only settings and literal text may write the scheme, host
// and port: an action reading other data (lead, vars, steps, captured,
// response, batch) at the start of the URL or before its path is a
// compile error unless AllowHosts is given, and so is an {{if}}, {{with}}
// or {{range}} on such data (or a {{break}} or {{continue}} under one)
// around text or an action before the path.
func (s *Set) Compile(name, src string, mode Mode, opts ...CompileOption) (*Template, error) {
	if name == "" {
		name = "template"
	}
	var cfg compileConfig
	for _, o := range opts {
		o(&cfg)
	}
	t := &Template{name: name, src: src, mode: mode, budget: s.budget}
	if mode == URL && cfg.hostsSet {
		t.allowHosts, t.hostsSet = cfg.allowHosts, true
		t.hosts = parsePatterns(cfg.allowHosts)
	}
	if loc := defineRE.FindStringIndex(src); loc != nil {
		line, col := position(src, loc[0])
		return nil, &Error{Name: name, Line: line, Col: col, Msg: "{{define}} and {{block}} are not supported"}
	}
	ns := s.namespace(cfg.transient)
	id := ns.unique()
	tm, err := ns.parse(id, src)
	if err != nil {
		e := parseError(name, id, err)
		dataTypo(e, src)
		return nil, e
	}
	tree := tm.Tree
	if tree == nil || tree.Root == nil {
		t.literal = true
		return t, nil
	}

	if mode == JSON && cfg.document {
		if off, msg, ok := jsonSkeleton(tree.Root, src); !ok {
			line, col := position(src, off)
			return nil, &Error{Name: name, Line: line, Col: col, Msg: msg}
		}
	}
	if text, ok := literalText(tree.Root); ok {
		t.literal, t.text = true, text
		return t, nil
	}

	c := &compiler{name: name, src: src, tree: tree}
	c.list(tree.Root, true)
	if c.err != nil {
		return nil, c.err
	}
	t.refs, t.refAt = c.sortedRefs()

	if act := singleAction(tree.Root); act != nil {
		t.isOne = true
		vtree := tree.Copy()
		va := singleAction(vtree.Root)
		va.Pipe.Cmds = append(va.Pipe.Cmds, c.command(va.Pos, c.ident(va.Pos, fnCapture), c.dollar(va.Pos)))
		meter{c}.list(vtree.Root)
		if t.single, err = ns.add(id+"~value", vtree); err != nil {
			return nil, &Error{Name: name, Msg: err.Error()}
		}
	}

	e := &escaper{c: c, mode: mode, allowHosts: t.hostsSet}
	e.list(tree.Root, initialState(mode), false)
	if c.err != nil {
		return nil, c.err
	}
	t.tmpl = tm
	t.checkPath = e.path
	if !s.slow {
		t.fast = fastSegments(src, tree.Root)
	}
	if e.strict {
		to := &Template{name: name, src: src, mode: mode, budget: s.budget}
		ttree := trustedOnlyTree(tree)
		if !s.slow {
			to.fast = fastSegments(src, ttree.Root)
		}
		meter{c}.list(ttree.Root)
		var err error
		if to.tmpl, err = ns.add(id+"~trusted", ttree); err != nil {
			return nil, &Error{Name: name, Msg: err.Error()}
		}
		t.trustedOnly = to
	}
	// Last, so that the fast path and the trusted-only copy see the
	// tree without the budget's calls.
	meter{c}.list(tree.Root)
	return t, nil
}

// namespace is the text/template namespace one Compile adds its templates
// to (its template, its typed-value copy, its trusted-only copy).
type namespace struct {
	base *template.Template
	mu   *sync.Mutex
	n    *int
}

// namespace returns the set's shared namespace or, for a transient
// template, one of its own.
func (s *Set) namespace(transient bool) namespace {
	if !transient {
		return namespace{base: s.base, mu: &s.mu, n: &s.ns}
	}
	s.mu.Lock()
	own, err := s.base.Clone() // Clone only fails for html/template
	s.mu.Unlock()
	if err != nil {
		own = s.base
	}
	return namespace{base: own, mu: new(sync.Mutex), n: new(int)}
}

// unique returns a template name not yet used in ns.
func (ns namespace) unique() string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	*ns.n++
	return "t" + strconv.Itoa(*ns.n)
}

// parse parses src as the template id of ns.
func (ns namespace) parse(id, src string) (*template.Template, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.base.New(id).Parse(src)
}

// add adds tree to ns as the template id.
func (ns namespace) add(id string, tree *parse.Tree) (*template.Template, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.base.AddParseTree(id, tree)
}

// literalText returns the output of a template made only of text.
func literalText(l *parse.ListNode) (string, bool) {
	var b strings.Builder
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			b.Write(n.Text)
		case *parse.CommentNode:
		default:
			return "", false
		}
	}
	return b.String(), true
}

// singleAction returns the template's only node when it is an output action
// (empty text, e.g. left by {{- -}} trimming, is ignored).
func singleAction(l *parse.ListNode) *parse.ActionNode {
	var act *parse.ActionNode
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if len(n.Text) > 0 {
				return nil
			}
		case *parse.CommentNode:
		case *parse.ActionNode:
			if act != nil || len(n.Pipe.Decl) > 0 {
				return nil
			}
			act = n
		default:
			return nil
		}
	}
	return act
}

// Render executes the template with data and returns the escaped text.
// It never modifies data. A URL template whose data would change the
// URL's origin, or (with AllowHosts) name a host not allowed, fails with an
// error matching ErrHost. A render that takes more than MaxSteps steps or
// MaxWork bytes of work fails with an error matching ErrBudget.
func (t *Template) Render(data map[string]any) (string, error) {
	return t.RenderContext(context.Background(), data)
}

// RenderContext is Render that stops, with an error matching ctx's
// (errors.Is(err, context.Canceled)), soon after ctx is done: a render
// looks at ctx at every loop iteration and function call.
func (t *Template) RenderContext(ctx context.Context, data map[string]any) (string, error) {
	if t.literal {
		if t.hostsSet {
			if err := t.checkURL(ctx, t.text, data); err != nil {
				return "", err
			}
		}
		return t.text, nil
	}
	out, err := t.render(ctx, data)
	if err != nil {
		return "", err
	}
	if t.checkPath {
		if err := checkDotSegments(out); err != nil {
			return "", t.hostErr(err)
		}
	}
	if t.trustedOnly != nil || t.hostsSet {
		if err := t.checkURL(ctx, out, data); err != nil {
			return "", err
		}
	}
	return out, nil
}

// newExecCtx is the dot of one execution of t with data under ctx.
func (t *Template) newExecCtx(ctx context.Context, data map[string]any) *execCtx {
	return &execCtx{data: data, ctx: ctx, done: ctx.Done(), limit: t.budget}
}

func (t *Template) render(ctx context.Context, data map[string]any) (string, error) {
	if t.fast != nil {
		if s, err := t.renderFast(data); err != errSlow {
			return s, err
		}
	}
	var b strings.Builder
	b.Grow(len(t.src) + 32)
	if err := t.tmpl.Execute(limitedWriter{&b}, t.newExecCtx(ctx, data)); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", &renderError{msg: "template " + t.name + ": " + errTooLarge.Error(), cause: errTooLarge}
		}
		return "", t.execError(err, t.tmpl)
	}
	return b.String(), nil
}

// Value returns the typed, unescaped result of a template that is exactly
// one action ({{lead.ok}} gives a bool, {{lead.obj}} a map); the text of a
// template without actions; and otherwise the same as Render. A typed value
// is not escaped or checked for its Mode (a Header template's value may
// contain CR/LF): use Render for text that goes into a request as is. A URL
// template's Value is its Render.
func (t *Template) Value(data map[string]any) (any, error) {
	return t.ValueContext(context.Background(), data)
}

// ValueContext is Value under ctx, as RenderContext is Render.
func (t *Template) ValueContext(ctx context.Context, data map[string]any) (any, error) {
	if t.literal {
		return t.text, nil
	}
	if !t.isOne || t.mode == URL {
		// A URL is only ever text, and its host checks run in Render.
		return t.RenderContext(ctx, data)
	}
	if t.fast != nil {
		for i := range t.fast {
			if seg := &t.fast[i]; seg.action {
				v, err := seg.value(data)
				if err == errSlow {
					break
				}
				if err != nil {
					return nil, t.execError(err, nil)
				}
				return v, nil
			}
		}
	}
	c := t.newExecCtx(ctx, data)
	if err := t.single.Execute(io.Discard, c); err != nil {
		return nil, t.execError(err, t.single)
	}
	return c.val, nil
}

// Source returns the template source as given to Compile.
func (t *Template) Source() string { return t.src }

// Name returns the name given to Compile.
func (t *Template) Name() string { return t.name }

// Mode returns the escaping mode the template was compiled with.
func (t *Template) Mode() Mode { return t.mode }

// IsLiteral reports whether the template has no actions at all.
func (t *Template) IsLiteral() bool { return t.literal }

// IsSingleAction reports whether the template is exactly one output action,
// in which case Value returns a typed value.
func (t *Template) IsSingleAction() bool { return t.isOne }

// Refs returns every root data path the template reads ("lead.email",
// "steps.auth.token"), deduplicated, in order of appearance; none for a
// nil template.
func (t *Template) Refs() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.refs))
	copy(out, t.refs)
	return out
}

// Ref is a data reference of a template and where the template first
// reads it (1-based, in the template source).
type Ref struct {
	Path      string
	Line, Col int
}

// RefsAt returns Refs with where each is first read.
func (t *Template) RefsAt() []Ref {
	if t == nil {
		return nil
	}
	return append([]Ref(nil), t.refAt...)
}

// Error is a compile error. Line and Col are 1-based and relative to the
// template source; Col is 0 when unknown.
type Error struct {
	Name      string // the template name given to Compile
	Line, Col int
	Msg       string
}

// Error formats the error as "template NAME:LINE:COL: MSG".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("template ")
	b.WriteString(e.Name)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// renderError is a render failure with a clean message; it unwraps to the
// cause so errors.Is(err, ErrMissing) works.
type renderError struct {
	msg   string
	cause error
}

func (e *renderError) Error() string { return e.msg }
func (e *renderError) Unwrap() error { return e.cause }

// execError turns an execution error of ran (the text/template that ran;
// nil: the fast path) into a readable one that names the template and, at
// most, data paths (never data values).
func (t *Template) execError(err error, ran *template.Template) error {
	var pe *pathError
	if errors.As(err, &pe) {
		return &renderError{msg: "template " + t.name + ": " + pe.Error(), cause: pe}
	}
	// text/template names the tree's parse name, then the template run
	// (each a name in the set's namespace)
	parsed, id := t.name, t.name
	if ran != nil {
		parsed, id = ran.Tree.ParseName, ran.Name()
	}
	msg := err.Error()
	loc := ""
	if rest, ok := strings.CutPrefix(msg, "template: "+parsed+":"); ok {
		if i := strings.Index(rest, ": executing "); i >= 0 {
			loc = ":" + oneBasedCol(rest[:i])
			rest = rest[i+len(": executing "):]
			rest = strings.TrimPrefix(rest, strconv.Quote(id)+" at <")
			if j := strings.Index(rest, ">: "); j >= 0 {
				rest = rest[j+3:]
			}
		} else if i := strings.Index(rest, ": "); i >= 0 {
			rest = rest[i+2:]
		}
		msg = rest
	}
	var fe *funcError
	var be *budgetError
	if errors.As(err, &be) {
		msg = be.msg
	} else if errors.As(err, &fe) {
		msg = fe.msg
	} else if r, ok := strings.CutPrefix(msg, "error calling "); ok {
		// Functions from sprig or Go's libraries may quote their arguments
		// (`parsing time "..."`), and arguments may be secrets.
		msg = quotedRE.ReplaceAllString(r, `"***"`)
	}
	return &renderError{msg: "template " + t.at(loc) + ": " + msg, cause: err}
}

// at names a place in the template: its name with loc (":line:col" inside
// the template) added. When the name is itself a file position
// ("f.yaml:45:27") the two are combined into one position in the file, so
// a message never reads f.yaml:45:27:1:3.
func (t *Template) at(loc string) string {
	if loc == "" {
		return t.name
	}
	var tl, tc int
	if _, err := fmt.Sscanf(loc, ":%d:%d", &tl, &tc); err != nil {
		return t.name + loc
	}
	i := strings.LastIndexByte(t.name, ':')
	j := strings.LastIndexByte(t.name[:max(i, 0)], ':')
	if i < 0 || j < 0 {
		return t.name + loc
	}
	fl, err1 := strconv.Atoi(t.name[j+1 : i])
	fc, err2 := strconv.Atoi(t.name[i+1:])
	if err1 != nil || err2 != nil {
		return t.name + loc
	}
	if tl <= 1 {
		return t.name[:j] + ":" + strconv.Itoa(fl) + ":" + strconv.Itoa(fc+tc-1)
	}
	return t.name[:j] + ":" + strconv.Itoa(fl+tl-1) + ":" + strconv.Itoa(tc)
}

// quotedRE matches a Go-quoted string in an error message.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// oneBasedCol turns text/template's "LINE:COL" (COL 0-based) into a 1-based one.
func oneBasedCol(loc string) string {
	line, col, ok := strings.Cut(loc, ":")
	n, err := strconv.Atoi(col)
	if !ok || err != nil {
		return loc
	}
	return line + ":" + strconv.Itoa(n+1)
}
