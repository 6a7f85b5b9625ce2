package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
	"unicode/utf8"
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

// marshalCompact is json.Marshal without HTML escaping.
func marshalCompact(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", ferr("json: cannot encode value: " + jsonErrMsg(err))
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// jsonErrMsg keeps encoding/json's error text, which names types, not values.
func jsonErrMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonValue is the JSON encoding of v's typed value (JSON mode, outside a string).
func jsonValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(x), nil
	case string:
		return `"` + jsonStringContent(x) + `"`, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", ferr("json: cannot encode NaN or Inf")
		}
		if a := math.Abs(x); a == 0 || (a >= 1e-6 && a < 1e21) {
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
	}
	return marshalCompact(v)
}

const hexDigits = "0123456789abcdef"

// jsonStringContent escapes s for use between the quotes of a JSON string.
func jsonStringContent(s string) string {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			b.WriteString(`\u202`)
			b.WriteByte(hexDigits[r&0xF])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
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

func pathEscape(s string) string  { return url.PathEscape(s) }
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

	stURLStart // nothing written yet: an action here is the base
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
	case stURLStart, stURLPath, stURLQuery, stURLFrag:
		for _, c := range text {
			if st == stURLStart {
				st = stURLPath
			}
			switch {
			case c == '?' && st == stURLPath:
				st = stURLQuery
			case c == '#' && st != stURLFrag:
				st = stURLFrag
			}
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
	case URL:
		switch st {
		case stURLStart:
			return fnPlain, "" // the base: scheme://host[/prefix] from trusted settings
		case stURLPath, stURLFrag:
			return fnURLPath, ""
		case stURLQuery:
			return fnURLQuery, ""
		}
	}
	return fnPlain, ""
}

// afterAction returns the state after an action that wrote output.
func afterAction(st state) state {
	if st == stURLStart {
		return stURLPath
	}
	return st
}

// join merges the states at the end of two branches.
func join(a, b state) (state, bool) {
	if a == b {
		return a, true
	}
	// Whether or not a branch wrote the base, what follows is path.
	if (a == stURLStart && b == stURLPath) || (a == stURLPath && b == stURLStart) {
		return stURLPath, true
	}
	return a, false
}

// escaper appends the right escaper command to every output action.
type escaper struct {
	c    *compiler
	mode Mode
}

func (e *escaper) list(l *parse.ListNode, st state) state {
	if l == nil {
		return st
	}
	for _, n := range l.Nodes {
		st = e.node(n, st)
	}
	return st
}

func (e *escaper) node(n parse.Node, st state) state {
	switch n := n.(type) {
	case *parse.TextNode:
		return advance(st, n.Text)
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return st // declares/assigns variables; writes nothing
		}
		fn, msg := escaperFor(e.mode, st)
		if msg != "" {
			e.c.errorAt(n.Pos, msg)
			return st
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, e.c.command(n.Pos, e.c.ident(n.Pos, fn)))
		return afterAction(st)
	case *parse.IfNode:
		return e.branch(&n.BranchNode, st, "if", false)
	case *parse.WithNode:
		return e.branch(&n.BranchNode, st, "with", false)
	case *parse.RangeNode:
		return e.branch(&n.BranchNode, st, "range", true)
	}
	return st
}

func (e *escaper) branch(b *parse.BranchNode, st state, kw string, loop bool) state {
	body := e.list(b.List, st)
	if loop && body != st {
		e.c.errorAt(b.Pos, fmt.Sprintf("{{range}} body ends in %s context but starts in %s context", body, st))
		return st
	}
	alt := e.list(b.ElseList, st)
	out, ok := join(body, alt)
	if !ok {
		e.c.errorAt(b.Pos, fmt.Sprintf("{{%s}} branches end in different contexts (%s and %s)", kw, body, alt))
	}
	return out
}
