package template

import (
	"errors"
	"strings"
	"text/template/parse"
)

// Most templates are literal text and plain references ("{{settings.base_url}}/
// v2/leads/{{lead.state}}"), possibly piped through a few one-argument
// functions ("{{ lead.phone | digits }}"). Those are rendered from a segment
// list without going through text/template's reflective executor; the
// result, including error messages, is the same. A function that cannot
// take a value the way text/template would (upper of a number) sends that
// render through text/template, so its error is text/template's own.

type segment struct {
	text     string // literal text, when !action
	action   bool
	path     string // "" reads the whole data map
	optional bool
	funcs    []fastFunc // applied in order to the looked-up value
	esc      func(any) (string, error)
	loc      string // ":LINE:COL" of the action, for escaper errors
}

// fastFunc is a template function the fast path calls directly. ok is
// false when text/template would treat v differently (a conversion or an
// error): the render then goes through text/template.
type fastFunc func(v any) (out any, ok bool)

// errSlow sends a render to text/template.
var errSlow = errors.New("template: render through text/template")

// stringFunc adapts a func(string) string, which text/template only calls
// directly for a string argument.
func stringFunc(f func(string) string) fastFunc {
	return func(v any) (any, bool) {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		return f(s), true
	}
}

// fastFuncs are the pipeline functions the fast path knows; each does what
// the function of the same name in the Set's function map does (digits is
// plumb's, upper, lower and trim are sprig's strings.ToUpper, ToLower and
// TrimSpace).
var fastFuncs = map[string]fastFunc{
	"digits": func(v any) (any, bool) { return digits(v), true },
	"upper":  stringFunc(strings.ToUpper),
	"lower":  stringFunc(strings.ToLower),
	"trim":   stringFunc(strings.TrimSpace),
}

// escaperFuncs are the Go implementations of the escaper commands.
func escaperFunc(name string) func(any) (string, error) {
	switch name {
	case fnPlain:
		return func(v any) (string, error) { return toText(v), nil }
	case fnHeader:
		return escapeHeader
	case fnJSONValue:
		return marshalCompact
	case fnJSONStr:
		return func(v any) (string, error) { return jsonStringContent(toText(v)), nil }
	case fnXML:
		return func(v any) (string, error) { return xmlEscape(toText(v)), nil }
	case fnXMLCDATA:
		return func(v any) (string, error) { return cdataEscape(toText(v)), nil }
	case fnURLPath:
		return func(v any) (string, error) { return pathEscape(toText(v)), nil }
	case fnURLQuery:
		return func(v any) (string, error) { return queryEscape(toText(v)), nil }
	case fnURLStrict:
		return func(v any) (string, error) { return strictEscape(toText(v)), nil }
	case fnURLHost:
		return func(v any) (string, error) { return hostEscape(toText(v)), nil }
	case fnEmpty:
		return func(any) (string, error) { return "", nil }
	}
	return nil
}

// fastSegments returns the segment list of an escaped tree, or nil when the
// tree uses anything beyond text and plain references.
func fastSegments(src string, root *parse.ListNode) []segment {
	segs := make([]segment, 0, len(root.Nodes))
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			segs = append(segs, segment{text: string(n.Text)})
		case *parse.ActionNode:
			p := n.Pipe
			last := len(p.Cmds) - 1
			if len(p.Decl) > 0 || last < 1 || len(p.Cmds[last].Args) != 1 {
				return nil
			}
			seg := segment{action: true}
			if !lookupCommand(p.Cmds[0], &seg) {
				return nil
			}
			for _, cmd := range p.Cmds[1:last] {
				if len(cmd.Args) != 1 {
					return nil
				}
				id, ok := cmd.Args[0].(*parse.IdentifierNode)
				if !ok || fastFuncs[id.Ident] == nil {
					return nil
				}
				seg.funcs = append(seg.funcs, fastFuncs[id.Ident])
			}
			id, ok := p.Cmds[last].Args[0].(*parse.IdentifierNode)
			if !ok {
				return nil
			}
			if seg.esc = escaperFunc(id.Ident); seg.esc == nil {
				return nil
			}
			line, col := position(src, int(id.Pos))
			seg.loc = ":" + itoa(line) + ":" + itoa(col)
			segs = append(segs, seg)
		default:
			return nil
		}
	}
	return segs
}

// lookupCommand recognises `__get $ "path"`, `__opt $ "path"` and `__data $`.
func lookupCommand(cmd *parse.CommandNode, seg *segment) bool {
	args := cmd.Args
	if len(args) < 2 {
		return false
	}
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok {
		return false
	}
	if v, ok := args[1].(*parse.VariableNode); !ok || len(v.Ident) != 1 || v.Ident[0] != "$" {
		return false
	}
	switch {
	case id.Ident == fnData && len(args) == 2:
		return true
	case (id.Ident == fnGet || id.Ident == fnOpt) && len(args) == 3:
		s, ok := args[2].(*parse.StringNode)
		if !ok {
			return false
		}
		seg.path, seg.optional = s.Text, id.Ident == fnOpt
		return true
	}
	return false
}

// value looks the segment's path up and applies its functions. It returns
// errSlow when a function cannot be applied here.
func (seg *segment) value(data map[string]any) (any, error) {
	if seg.path == "" {
		return data, nil
	}
	v, err := lookup(data, seg.path, seg.optional)
	if err != nil {
		return nil, err
	}
	for _, f := range seg.funcs {
		var ok bool
		if v, ok = f(v); !ok {
			return nil, errSlow
		}
	}
	return v, nil
}

func (t *Template) renderFast(data map[string]any) (string, error) {
	var b strings.Builder
	b.Grow(len(t.src) + 32)
	for i := range t.fast {
		seg := &t.fast[i]
		if !seg.action {
			b.WriteString(seg.text)
			continue
		}
		v, err := seg.value(data)
		if err == errSlow {
			return "", err
		}
		if err != nil {
			return "", t.execError(err, nil)
		}
		s, err := seg.esc(v)
		if err != nil {
			return "", &renderError{msg: "template " + t.at(seg.loc) + ": " + err.Error(), cause: err}
		}
		b.WriteString(s)
	}
	return b.String(), nil
}
