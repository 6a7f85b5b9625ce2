package template

import (
	"strings"
	"text/template/parse"
)

// Most templates are literal text and plain references ("{{settings.base_url}}/
// v2/leads/{{lead.state}}"). Those are rendered from a segment list without
// going through text/template's reflective executor; the result, including
// error messages, is the same.

type segment struct {
	text     string // literal text, when !action
	action   bool
	path     string // "" reads the whole data map
	optional bool
	esc      func(any) (string, error)
	loc      string // ":LINE:COL" of the action, for escaper errors
}

// escaperFuncs are the Go implementations of the escaper commands.
func escaperFunc(name string) func(any) (string, error) {
	switch name {
	case fnPlain:
		return func(v any) (string, error) { return toText(v), nil }
	case fnHeader:
		return escapeHeader
	case fnJSONValue:
		return jsonValue
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
			if len(p.Decl) > 0 || len(p.Cmds) != 2 || len(p.Cmds[1].Args) != 1 {
				return nil
			}
			seg := segment{action: true}
			if !lookupCommand(p.Cmds[0], &seg) {
				return nil
			}
			id, ok := p.Cmds[1].Args[0].(*parse.IdentifierNode)
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

func (seg *segment) value(data map[string]any) (any, error) {
	if seg.path == "" {
		return data, nil
	}
	return lookup(data, seg.path, seg.optional)
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
		if err != nil {
			return "", t.execError(err)
		}
		s, err := seg.esc(v)
		if err != nil {
			return "", &renderError{msg: "template " + t.name + seg.loc + ": " + err.Error(), cause: err}
		}
		b.WriteString(s)
	}
	return b.String(), nil
}
