package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/plumbhq/plumb/internal/jsonw"
)

func itoa(n int) string { return strconv.Itoa(n) }

// toText is the Plain stringification every mode starts from.
func toText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case json.Number:
		return x.String()
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case map[string]any, []any:
		if s, err := marshalCompact(x); err == nil {
			return s
		}
	}
	return fmt.Sprint(v)
}

// marshalCompact is json.Marshal without HTML escaping: the JSON encoding
// of v's typed value (JSON mode, outside a string) and the json functions.
func marshalCompact(v any) (string, error) {
	b, err := jsonw.AppendValue(nil, v)
	if err != nil {
		return "", ferr("json: cannot encode value: " + jsonErrMsg(err))
	}
	return string(b), nil
}

// marshalIndent is json.MarshalIndent without HTML escaping.
func marshalIndent(v any) (string, error) {
	b, err := jsonw.MarshalIndent(v, "  ")
	if err != nil {
		return "", ferr("json: cannot encode value: " + jsonErrMsg(err))
	}
	return string(b), nil
}

// MarshalJSON is json.Marshal without HTML escaping: "<", ">" and "&" are
// written as they are, not as \u003c, \u003e, \u0026, so a partner that
// signs or compares raw bodies sees the bytes the author meant. Use it
// for every JSON request body.
func MarshalJSON(v any) ([]byte, error) {
	b, err := jsonw.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return b, nil
}

// jsonErrMsg keeps encoding/json's error text, which names types, not values.
func jsonErrMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonStringContent escapes s for use between the quotes of a JSON string.
func jsonStringContent(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	if i == len(s) {
		return s
	}
	b := jsonw.AppendString(make([]byte, 0, len(s)+8), s)
	return string(b[1 : len(b)-1])
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// xmlEscape escapes s for XML text or an attribute value, like
// encoding/xml.EscapeText (quotes included); characters not allowed in
// XML 1.0 and invalid UTF-8 become U+FFFD.
func xmlEscape(s string) string {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' || c >= utf8.RuneSelf {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&#34;")
		case r == '\'':
			b.WriteString("&#39;")
		case r == '\t':
			b.WriteString("&#x9;")
		case r == '\n':
			b.WriteString("&#xA;")
		case r == '\r':
			b.WriteString("&#xD;")
		case (r == utf8.RuneError && size == 1) || !isXMLChar(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cdataEscape makes s safe inside <![CDATA[ ... ]]>: "]]>" is split across two
// sections and characters not allowed in XML become U+FFFD.
func cdataEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "]]>") {
			b.WriteString("]]]]><![CDATA[>")
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !isXMLChar(r) {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// pathEscape escapes s as one path segment. A value that is exactly "."
// or ".." is written %2E / %2E%2E so it is never a dot segment to a
// client or a server that resolves them before decoding; Render refuses
// the URL anyway (checkDotSegments), since many servers decode first.
func pathEscape(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// strictEscape percent-encodes every byte but ASCII letters, digits, '-',
// '_' and '~', so a value written right after a URL base that may end in
// the host cannot add "@" (userinfo), ":" (port), "." (host suffix), or
// start a path, query or fragment. A "%2E" that lands in a host makes the
// URL invalid rather than pointing elsewhere.
func strictEscape(s string) string {
	return percentEncode(s, func(c byte) bool { return c == '-' || c == '_' || c == '~' })
}

// hostEscape escapes a value written into the host of a template compiled
// with AllowHosts: letters, digits, '-' and '.' pass, so the value can name
// a host (checked against the allowed list at render) but cannot add
// userinfo, a port, a path, a query or a fragment.
func hostEscape(s string) string {
	return percentEncode(s, func(c byte) bool { return c == '-' || c == '.' })
}

// percentEncode writes s with every byte that is not an ASCII letter or
// digit and for which keep is false as %XX.
func percentEncode(s string, keep func(byte) bool) string {
	const upperHex = "0123456789ABCDEF"
	ok := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || keep(c)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; ok(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xF])
		}
	}
	return string(b)
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// escapeHeader stringifies v and rejects CR, LF and NUL.
func escapeHeader(v any) (string, error) {
	s := toText(v)
	if strings.ContainsAny(s, "\r\n") {
		return "", ferr("header value contains CR/LF")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", ferr("header value contains NUL")
	}
	return s, nil
}

// ---- context tracking -------------------------------------------------------

// state is where the output is at some point of a template, per Mode.
type state uint8

const (
	stNone state = iota // Plain, Header: context-free

	stJSONOut    // between JSON tokens
	stJSONStr    // inside a string literal
	stJSONStrEsc // inside a string literal, right after a backslash

	stURLStart       // nothing written yet: an action here is the base
	stURLScheme      // literal text that may be a scheme ("https")
	stURLSchemeColon // after "scheme:"
	stURLSchemeSlash // after "scheme:/"
	stURLStartSlash  // after a leading "/"
	stURLAuthority   // after "scheme://" or a leading "//", before the path
	stURLBase        // after a base action: may still be in the scheme or authority
	stURLBaseSlash   // after a base action and a "/": "//" would start an authority
	stURLPath
	stURLQuery
	stURLFrag

	stXMLText
	stXMLTag    // inside <...>, not in an attribute value
	stXMLAttrDQ // inside a "..." attribute value
	stXMLAttrSQ // inside a '...' attribute value
	stXMLComment
	stXMLCDATA
	stXMLPI // <?...?> or <!DOCTYPE ...>
)

func (s state) String() string {
	switch s {
	case stJSONOut:
		return "JSON value"
	case stJSONStr, stJSONStrEsc:
		return "JSON string"
	case stURLStart:
		return "URL start"
	case stURLScheme, stURLSchemeColon, stURLSchemeSlash, stURLStartSlash, stURLAuthority:
		return "URL scheme or host"
	case stURLBase, stURLBaseSlash:
		return "URL after its base"
	case stURLPath:
		return "URL path"
	case stURLQuery:
		return "URL query"
	case stURLFrag:
		return "URL fragment"
	case stXMLText:
		return "XML text"
	case stXMLTag:
		return "XML tag"
	case stXMLAttrDQ, stXMLAttrSQ:
		return "XML attribute value"
	case stXMLComment:
		return "XML comment"
	case stXMLCDATA:
		return "XML CDATA section"
	case stXMLPI:
		return "XML declaration"
	}
	return "text"
}

func initialState(m Mode) state {
	switch m {
	case JSON:
		return stJSONOut
	case URL:
		return stURLStart
	case XML:
		return stXMLText
	}
	return stNone
}

// advance returns the state after literal text.
func advance(st state, text []byte) state {
	switch st {
	case stJSONOut, stJSONStr, stJSONStrEsc:
		for _, c := range text {
			switch st {
			case stJSONOut:
				if c == '"' {
					st = stJSONStr
				}
			case stJSONStr:
				if c == '\\' {
					st = stJSONStrEsc
				} else if c == '"' {
					st = stJSONOut
				}
			case stJSONStrEsc:
				st = stJSONStr
			}
		}
	case stURLStart, stURLScheme, stURLSchemeColon, stURLSchemeSlash, stURLStartSlash,
		stURLAuthority, stURLBase, stURLBaseSlash, stURLPath, stURLQuery, stURLFrag:
		for _, c := range text {
			st = urlNext(st, c)
		}
	case stXMLText, stXMLTag, stXMLAttrDQ, stXMLAttrSQ, stXMLComment, stXMLCDATA, stXMLPI:
		for i := 0; i < len(text); i++ {
			rest := text[i:]
			switch st {
			case stXMLText:
				if text[i] != '<' {
					continue
				}
				switch {
				case bytes.HasPrefix(rest, []byte("<!--")):
					st, i = stXMLComment, i+3
				case bytes.HasPrefix(rest, []byte("<![CDATA[")):
					st, i = stXMLCDATA, i+8
				case bytes.HasPrefix(rest, []byte("<?")), bytes.HasPrefix(rest, []byte("<!")):
					st = stXMLPI
				default:
					st = stXMLTag
				}
			case stXMLTag:
				switch text[i] {
				case '"':
					st = stXMLAttrDQ
				case '\'':
					st = stXMLAttrSQ
				case '>':
					st = stXMLText
				}
			case stXMLAttrDQ:
				if text[i] == '"' {
					st = stXMLTag
				}
			case stXMLAttrSQ:
				if text[i] == '\'' {
					st = stXMLTag
				}
			case stXMLComment:
				if bytes.HasPrefix(rest, []byte("-->")) {
					st, i = stXMLText, i+2
				}
			case stXMLCDATA:
				if bytes.HasPrefix(rest, []byte("]]>")) {
					st, i = stXMLText, i+2
				}
			case stXMLPI:
				if text[i] == '>' {
					st = stXMLText
				}
			}
		}
	}
	return st
}

// urlNext is the URL state after the literal byte c. It only has to be
// right for URLs an author writes; anything it cannot place is treated as
// the scheme or host, where data is refused.
func urlNext(st state, c byte) state {
	switch st {
	case stURLStart:
		switch c {
		case '/':
			return stURLStartSlash
		case '?':
			return stURLQuery
		case '#':
			return stURLFrag
		case ':':
			return stURLPath
		}
		return stURLScheme
	case stURLStartSlash, stURLSchemeSlash, stURLBaseSlash:
		if c == '/' {
			return stURLAuthority
		}
		return urlNext(stURLPath, c)
	case stURLScheme:
		switch c {
		case ':':
			return stURLSchemeColon
		case '/':
			return stURLPath
		case '?':
			return stURLQuery
		case '#':
			return stURLFrag
		}
	case stURLSchemeColon:
		if c == '/' {
			return stURLSchemeSlash
		}
		return urlNext(stURLPath, c)
	case stURLAuthority, stURLBase:
		switch c {
		case '/':
			if st == stURLBase {
				return stURLBaseSlash
			}
			return stURLPath
		case '?':
			return stURLQuery
		case '#':
			return stURLFrag
		}
	case stURLPath:
		switch c {
		case '?':
			return stURLQuery
		case '#':
			return stURLFrag
		}
	case stURLQuery:
		if c == '#' {
			return stURLFrag
		}
	}
	return st
}

// inAuthority reports whether an action in URL state st could write the
// scheme, host or port.
func inAuthority(st state) bool {
	switch st {
	case stURLStart, stURLScheme, stURLSchemeColon, stURLSchemeSlash, stURLAuthority:
		return true
	}
	return false
}

// urlEscaper names the escaper for an action in URL state st, and the
// state after it. trusted says the action reads only settings and
// literals; allowHosts that the template was compiled with AllowHosts.
func urlEscaper(st state, trusted, allowHosts bool) (fn string, next state, msg string) {
	switch st {
	case stURLStart:
		if !trusted && !allowHosts {
			return "", st, " cannot choose the URL's scheme or host: an action at the start of a url is its base and may only read settings"
		}
		return fnPlain, stURLBase, ""
	case stURLScheme, stURLSchemeColon, stURLSchemeSlash, stURLAuthority:
		next = st
		if st == stURLSchemeColon || st == stURLSchemeSlash {
			next = stURLBase
		}
		switch {
		case trusted:
			return fnPlain, next, ""
		case allowHosts:
			return fnURLHost, next, ""
		}
		return "", st, " cannot choose the URL's scheme, host or port: only settings and literal text may appear before the path"
	case stURLBase:
		if trusted {
			return fnPlain, stURLBase, ""
		}
		// The base may end in the authority ("https://api.example.com"),
		// so data right after it is escaped so it can add neither "@",
		// ":" nor a ".host" suffix, and the rendered origin is checked.
		return fnURLStrict, stURLBase, ""
	case stURLBaseSlash:
		if trusted {
			return fnPlain, stURLBase, ""
		}
		// A "/" after the base ends its authority (a base is a URL with
		// a scheme and host, or empty): data here is a path segment.
		return fnURLPath, stURLPath, ""
	case stURLStartSlash:
		return fnURLPath, stURLPath, ""
	case stURLPath, stURLFrag:
		return fnURLPath, st, ""
	case stURLQuery:
		return fnURLQuery, st, ""
	}
	return fnPlain, st, ""
}

// escaperFor names the escaper for an action in state st of mode m.
func escaperFor(m Mode, st state) (string, string) {
	switch m {
	case Header:
		return fnHeader, ""
	case JSON:
		switch st {
		case stJSONOut:
			return fnJSONValue, ""
		case stJSONStr:
			return fnJSONStr, ""
		default:
			return "", "action right after a backslash in a JSON string"
		}
	case XML:
		switch st {
		case stXMLText, stXMLTag, stXMLAttrDQ, stXMLAttrSQ:
			return fnXML, ""
		case stXMLCDATA:
			return fnXMLCDATA, ""
		default:
			return "", "actions are not allowed inside an " + st.String()
		}
	}
	return fnPlain, ""
}

// join merges the states at the end of two branches.
func join(a, b state) (state, bool) {
	if a == b {
		return a, true
	}
	rank := func(s state) int {
		switch s {
		case stURLStart:
			return 0
		case stURLBase, stURLBaseSlash:
			return 1
		case stURLPath:
			return 2
		}
		return -1
	}
	// Whether or not a branch wrote the base, what follows is treated as
	// the earliest, most restrictive of the two.
	ra, rb := rank(a), rank(b)
	if ra < 0 || rb < 0 {
		return a, false
	}
	if ra == 1 && rb == 1 {
		return stURLBase, true
	}
	if ra < rb {
		return a, true
	}
	return b, true
}

// escaper appends the right escaper command to every output action.
type escaper struct {
	c          *compiler
	mode       Mode
	allowHosts bool
	// strict is set when data is written right after a URL base, where it
	// could extend the host: Render then checks the host.
	strict bool
	// path is set when a value may land in the URL's path: Render then
	// checks that no segment is a dot segment once decoded.
	path bool
	// ctl names the untrusted data ("lead.f") that the innermost enclosing
	// {{if}}, {{with}} or {{range}} depends on, and ctlKw its keyword; ""
	// outside such control flow. In URL mode (without AllowHosts) nothing
	// may be written before the path under it.
	ctl, ctlKw string
}

// beforePath reports whether writing byte c (or an action, c == 0) in URL
// state st could change the URL's scheme, host or port: anything before
// the path does, and so does a '/' right after a leading "/" or a base's
// "/" (it would make "//", an authority).
func beforePath(st state, c byte) bool {
	switch st {
	case stURLStart, stURLScheme, stURLSchemeColon, stURLSchemeSlash, stURLAuthority, stURLBase:
		return true
	case stURLStartSlash, stURLBaseSlash:
		return c == '/' || c == 0
	}
	return false
}

// checkCtl refuses text or an action (text nil) at pos in state st when
// untrusted data decides whether it is written and it lands before the
// path of a URL: lead data would then choose between literal hosts. An
// action in a path segment is escaped and cannot start an authority.
func (e *escaper) checkCtl(pos parse.Pos, st state, text []byte, fn string) bool {
	if e.mode != URL || e.ctl == "" || e.allowHosts {
		return true
	}
	bad := -1
	if text == nil {
		if beforePath(st, 0) && fn != fnURLPath {
			bad = 0
		}
	} else {
		for i, c := range text {
			if beforePath(st, c) {
				bad = i
				break
			}
			st = urlNext(st, c)
		}
	}
	if bad < 0 {
		return true
	}
	e.c.errorAt(pos+parse.Pos(bad), e.ctl+" cannot choose the URL's scheme, host or port: a {{"+e.ctlKw+"}} on it "+
		"writes part of them, and only settings may decide what is written before the path (write a literal '/' before the {{"+e.ctlKw+"}})")
	return false
}

func (e *escaper) list(l *parse.ListNode, st state, dotTrusted bool) state {
	if l == nil {
		return st
	}
	for _, n := range l.Nodes {
		st = e.node(n, st, dotTrusted)
	}
	return st
}

func (e *escaper) node(n parse.Node, st state, dotTrusted bool) state {
	switch n := n.(type) {
	case *parse.TextNode:
		if e.ctl != "" && !e.checkCtl(n.Pos, st, n.Text, "") {
			return st
		}
		return advance(st, n.Text)
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return st // declares/assigns variables; writes nothing
		}
		var fn, msg string
		next := st
		if e.mode == URL {
			trusted := trustedPipe(n.Pipe, dotTrusted)
			fn, next, msg = urlEscaper(st, trusted, e.allowHosts)
			if fn == fnURLStrict {
				e.strict = true
			}
			if fn == fnURLStrict || fn == fnURLPath {
				e.path = true
			}
		} else {
			fn, msg = escaperFor(e.mode, st)
		}
		if msg != "" {
			if e.mode == URL {
				msg = untrustedName(n.Pipe) + msg
			}
			e.c.errorAt(n.Pos, msg)
			return st
		}
		if e.ctl != "" && !e.checkCtl(n.Pos, st, nil, fn) {
			return st
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, e.c.command(n.Pos, e.c.ident(n.Pos, fn)))
		return next
	case *parse.IfNode:
		return e.branch(&n.BranchNode, st, "if", false, dotTrusted, dotTrusted, trustedPipe(n.Pipe, dotTrusted))
	case *parse.WithNode:
		trusted := trustedPipe(n.Pipe, dotTrusted)
		return e.branch(&n.BranchNode, st, "with", false, trusted, dotTrusted, trusted)
	case *parse.RangeNode:
		trusted := trustedPipe(n.Pipe, dotTrusted)
		if e.mode == URL && inAuthority(st) && !e.allowHosts && !trusted {
			e.c.errorAt(n.Pos, "data other than settings cannot repeat text in the URL's scheme or host: a {{range}} there may only range over settings")
			return st
		}
		// A {{break}} or {{continue}} under an untrusted condition lets
		// that data decide how often the body is written.
		decides := trusted && !untrustedExit(n.List, trusted)
		return e.branch(&n.BranchNode, st, "range", true, trusted, dotTrusted, decides)
	}
	return st
}

// branch escapes the lists of an if, with or range. trusted says whether
// only settings and literals decide which list runs (and how often).
func (e *escaper) branch(b *parse.BranchNode, st state, kw string, loop, bodyDot, elseDot, trusted bool) state {
	if !trusted && e.ctl == "" {
		e.ctl, e.ctlKw = untrustedName(b.Pipe), kw
		defer func() { e.ctl, e.ctlKw = "", "" }()
	}
	body := e.list(b.List, st, bodyDot)
	if loop && body != st {
		e.c.errorAt(b.Pos, fmt.Sprintf("{{range}} body ends in %s context but starts in %s context", body, st))
		return st
	}
	alt := e.list(b.ElseList, st, elseDot)
	out, ok := join(body, alt)
	if !ok {
		e.c.errorAt(b.Pos, fmt.Sprintf("{{%s}} branches end in different contexts (%s and %s)", kw, body, alt))
	}
	return out
}

// exits reports whether l holds a {{break}} or {{continue}} of the
// enclosing range (not one of a range inside l).
func exits(l *parse.ListNode) bool {
	if l == nil {
		return false
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.BreakNode, *parse.ContinueNode:
			return true
		case *parse.IfNode:
			if exits(n.List) || exits(n.ElseList) {
				return true
			}
		case *parse.WithNode:
			if exits(n.List) || exits(n.ElseList) {
				return true
			}
		}
	}
	return false
}

// untrustedExit reports whether a range body l leaves an iteration early
// ({{break}}, {{continue}}) under a condition on untrusted data. dot says
// whether dot holds trusted data.
func untrustedExit(l *parse.ListNode, dot bool) bool {
	if l == nil {
		return false
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.IfNode:
			if !trustedPipe(n.Pipe, dot) && (exits(n.List) || exits(n.ElseList)) {
				return true
			}
			if untrustedExit(n.List, dot) || untrustedExit(n.ElseList, dot) {
				return true
			}
		case *parse.WithNode:
			t := trustedPipe(n.Pipe, dot)
			if !t && (exits(n.List) || exits(n.ElseList)) {
				return true
			}
			if untrustedExit(n.List, t) || untrustedExit(n.ElseList, dot) {
				return true
			}
		}
	}
	return false
}

// untrustedName names the first data an action reads that is not settings
// ("lead.port"), for messages; "data" when it is not a plain reference.
func untrustedName(p *parse.PipeNode) string {
	name := ""
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if name != "" {
			return
		}
		switch n := n.(type) {
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if len(n.Args) == 3 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && (id.Ident == fnGet || id.Ident == fnOpt) {
					if s, ok := n.Args[2].(*parse.StringNode); ok && s.Text != "settings" && !strings.HasPrefix(s.Text, "settings.") {
						name = s.Text
					}
					return
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.ChainNode:
			walk(n.Node)
		}
	}
	walk(p)
	if name == "" {
		return "data"
	}
	return name
}

// trustedPipe reports whether everything p reads comes from settings or
// literals (the integration file and settings are trusted; lead data,
// captures, step results, vars, responses and batches are not). dot says
// whether dot holds trusted data. Variables are not tracked and count as
// untrusted.
func trustedPipe(p *parse.PipeNode, dot bool) bool {
	if p == nil {
		return true
	}
	for _, cmd := range p.Cmds {
		if !trustedCmd(cmd, dot) {
			return false
		}
	}
	return true
}

func trustedCmd(cmd *parse.CommandNode, dot bool) bool {
	if len(cmd.Args) > 0 {
		if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
			switch id.Ident {
			case fnGet, fnOpt:
				if len(cmd.Args) != 3 {
					return false
				}
				s, ok := cmd.Args[2].(*parse.StringNode)
				return ok && (s.Text == "settings" || strings.HasPrefix(s.Text, "settings."))
			case fnData:
				return false
			}
		}
	}
	for _, a := range cmd.Args {
		if !trustedNode(a, dot) {
			return false
		}
	}
	return true
}

func trustedNode(n parse.Node, dot bool) bool {
	switch n := n.(type) {
	case *parse.PipeNode:
		return trustedPipe(n, dot)
	case *parse.ChainNode:
		return trustedNode(n.Node, dot)
	case *parse.DotNode, *parse.FieldNode:
		return dot
	case *parse.IdentifierNode, *parse.BoolNode, *parse.NumberNode, *parse.StringNode, *parse.NilNode:
		return true
	}
	return false
}
