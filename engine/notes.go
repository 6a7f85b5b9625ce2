package engine

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/antchfx/xmlquery"
	"github.com/tidwall/gjson"

	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// Bounds of a capture note: how many names it lists, how long one name and
// a quoted piece of the body may be.
const (
	noteNames    = 12
	noteNameLen  = 48
	noteBodyShow = 80
)

// how is what a capture reads, as written in the file: for the note on a
// capture that finds nothing.
type how struct {
	kind  string // parse.KindJSON, …
	expr  string // the path, expression, pattern, separator or header name
	index int    // split index
}

// howOf keeps what a note needs of a capture's definition.
func howOf(cp *steps.Capture) how {
	switch {
	case cp.JSON != "":
		return how{kind: parse.KindJSON, expr: cp.JSON}
	case cp.XPath != "":
		return how{kind: parse.KindXPath, expr: cp.XPath}
	case cp.Split != "":
		return how{kind: parse.KindSplit, expr: cp.Split, index: cp.Index}
	case cp.Regex != "":
		return how{kind: parse.KindRegex, expr: cp.Regex}
	case cp.Header != "":
		return how{kind: parse.KindHeader, expr: cp.Header}
	}
	return how{kind: parse.KindStatus}
}

// missNote says why capture c found nothing in doc, with what the answer
// holds instead (bounded, masked by m): "`status`: path `result.status`
// not found in the response (keys: data, meta)". It is "" for a capture
// that cannot miss that way (status).
func missNote(c *capture, doc *parse.Doc, m *masker) string {
	name := "`" + c.name + "`"
	body := bytes.TrimPrefix(doc.Response().Body, []byte("\xef\xbb\xbf"))
	var what, why string
	switch c.how.kind {
	case parse.KindJSON:
		what = "path `" + c.how.expr + "` not found in the response"
		why = jsonMiss(body, c.how.expr, m)
	case parse.KindXPath:
		what = "xpath `" + c.how.expr + "` matched nothing in the response"
		if len(bytes.TrimSpace(body)) == 0 {
			why = "the body is empty"
		} else {
			why = xmlMiss(doc, c.how.expr, m)
		}
	case parse.KindRegex:
		what = "regex `" + c.how.expr + "` matched nothing in the response"
		why = bodyStart(body, m)
	case parse.KindSplit:
		what = fmt.Sprintf("split `%s` has no part %d in the response", c.how.expr, c.how.index)
		if len(bytes.TrimSpace(body)) > 0 {
			why = "the body has " + pluralOf(bytes.Count(body, []byte(c.how.expr))+1, "part")
		} else {
			why = "the body is empty"
		}
	case parse.KindHeader:
		what = "header `" + c.how.expr + "` not in the response"
		why = "headers: " + names(headerNames(doc.Response().Header), m)
	default:
		return ""
	}
	if why != "" {
		what += " (" + why + ")"
	}
	return name + ": " + what
}

// jsonMiss tells what a JSON body holds where path finds nothing: the keys
// of the deepest object on the path that exists ("keys: data, meta", "keys
// of `data`: id, items"), or what stands there instead of an object.
func jsonMiss(body []byte, path string, m *masker) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "the body is empty"
	}
	at, r := "", gjson.ParseBytes(body)
	if parts, ok := simplePath(path); ok {
		for i := 1; i < len(parts); i++ {
			prefix := strings.Join(parts[:i], ".")
			x := gjson.GetBytes(body, prefix)
			if !x.Exists() {
				break
			}
			at, r = prefix, x
		}
	}
	where := "the response"
	if at != "" {
		where = "`" + at + "`"
	}
	switch {
	case r.IsObject():
		var keys []string
		r.ForEach(func(k, _ gjson.Result) bool {
			keys = append(keys, k.String())
			return len(keys) <= noteNames
		})
		if at == "" {
			return "keys: " + names(keys, m)
		}
		return "keys of " + where + ": " + names(keys, m)
	case r.IsArray():
		n := 0
		r.ForEach(func(_, _ gjson.Result) bool { n++; return true })
		return where + " is an array of " + pluralOf(n, "item")
	case r.Type == gjson.Null:
		return where + " is null"
	case r.Type == gjson.String:
		return where + " is a string"
	case r.Type == gjson.Number:
		return where + " is a number"
	case r.Type == gjson.True, r.Type == gjson.False:
		return where + " is a boolean"
	}
	return ""
}

// simplePath splits a gjson path of plain names (no wildcards, queries,
// modifiers, escapes or pipes) at its dots.
func simplePath(path string) ([]string, bool) {
	if path == "" || strings.ContainsAny(path, `*?#@|\!()[]{}=<>`) {
		return nil, false
	}
	parts := strings.Split(path, ".")
	for _, p := range parts {
		if p == "" {
			return nil, false
		}
	}
	return parts, true
}

// xmlMiss tells what an XML body holds where an XPath finds nothing: its
// root element and the root's children, and a hint when the document
// uses namespaces the expression does not.
func xmlMiss(doc *parse.Doc, expr string, m *masker) string {
	root, err := doc.XMLRoot()
	if err != nil || root == nil {
		return ""
	}
	var top *xmlquery.Node
	for n := root.FirstChild; n != nil; n = n.NextSibling {
		if n.Type == xmlquery.ElementNode {
			top = n
			break
		}
	}
	if top == nil {
		return "the document has no element"
	}
	var kids []string
	namespaced := top.NamespaceURI != ""
	for n := top.FirstChild; n != nil && len(kids) <= noteNames; n = n.NextSibling {
		if n.Type == xmlquery.ElementNode {
			kids = append(kids, qname(n))
			namespaced = namespaced || n.NamespaceURI != ""
		}
	}
	s := "root element " + names([]string{qname(top)}, m)
	if len(kids) > 0 {
		s += ", its children: " + names(kids, m)
	}
	if namespaced && !strings.Contains(expr, ":") {
		s += "; the document uses namespaces: declare them under namespaces: and prefix the names"
	}
	return s
}

func qname(n *xmlquery.Node) string {
	if n.Prefix != "" {
		return n.Prefix + ":" + n.Data
	}
	return n.Data
}

// bodyStart quotes the start of a body for a note, masked before the cut.
func bodyStart(body []byte, m *masker) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "the body is empty"
	}
	b := body[:min(len(body), noteBodyShow*8)]
	return "the body starts " + strconv.Quote(m.clip(string(b), noteBodyShow))
}

func headerNames(h map[string][]string) []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// names lists names for a note: at most noteNames, each cut to
// noteNameLen and masked, control characters escaped.
func names(list []string, m *masker) string {
	if len(list) == 0 {
		return "none"
	}
	shown := list[:min(len(list), noteNames)]
	out := make([]string, len(shown))
	for i, n := range shown {
		n = m.clip(n, noteNameLen)
		if strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ',' }) {
			n = strconv.Quote(n)
		}
		out[i] = n
	}
	s := strings.Join(out, ", ")
	if len(list) > noteNames {
		s += ", …"
	}
	return s
}

// pluralOf spells n with its noun: 1 attempt, 2 attempts.
func pluralOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
