package template

import (
	"encoding/json"
	"errors"
	"text/template/parse"
)

// A JSON template compiled with Document is checked when it is compiled: it is rendered with
// every action replaced by a placeholder that is valid where the action
// lands ("" between tokens, where an action writes one JSON value, and
// nothing inside a string), every {{if}}/{{with}} both ways and every
// {{range}} zero times and once. The template is refused only when no
// such rendering is valid JSON, so a syntax error in its literal text is
// reported at compile time and a valid template is never refused. A
// template with more than maxJSONAlts renderings, or with a
// {{break}}/{{continue}}, is left to the render.

// maxJSONAlts bounds the renderings a JSON template is checked with.
const maxJSONAlts = 64

// jsonAlt is one rendering of a JSON template: its output, the source
// offset each output byte comes from, and the escaping state at its end.
type jsonAlt struct {
	out []byte
	src []int
	st  state
}

func (a jsonAlt) with(b []byte, pos int, st state) jsonAlt {
	out := append(a.out[:len(a.out):len(a.out)], b...)
	src := a.src[:len(a.src):len(a.src)]
	for i := range b {
		src = append(src, pos+i)
	}
	return jsonAlt{out: out, src: src, st: st}
}

// jsonSkeleton is where a JSON template's literal text makes every
// rendering invalid: the source offset of the syntax error and its
// message; ok when some rendering is valid or the check does not apply.
func jsonSkeleton(root *parse.ListNode, src string) (off int, msg string, ok bool) {
	alts, known := jsonList(root, []jsonAlt{{st: stJSONOut}})
	if !known || len(alts) == 0 {
		return 0, "", true
	}
	best := -1
	for _, a := range alts {
		var raw json.RawMessage
		err := json.Unmarshal(a.out, &raw)
		if err == nil {
			return 0, "", true
		}
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			return 0, "", true
		}
		o := len(src) // the input ended early
		if at := int(se.Offset) - 1; at >= 0 && at < len(a.src) && se.Error() != "unexpected end of JSON input" {
			o = a.src[at] // the byte the decoder refused
		}
		if o > best {
			best, msg = o, se.Error()
		}
	}
	if best >= len(src) {
		best = len(src) - 1
		for best > 0 && (src[best] == '\n' || src[best] == ' ' || src[best] == '\t' || src[best] == '\r') {
			best--
		}
		msg += " (is a closing bracket or brace missing?)"
	}
	return max(best, 0), "the JSON text is not valid JSON whatever the data: " + msg, false
}

// jsonList returns the renderings of l after each of ins; known is false
// when there would be too many or l holds a node the check does not model.
func jsonList(l *parse.ListNode, ins []jsonAlt) (alts []jsonAlt, known bool) {
	if l == nil {
		return ins, true
	}
	alts = ins
	for _, n := range l.Nodes {
		if alts, known = jsonNode(n, alts); !known || len(alts) > maxJSONAlts {
			return nil, false
		}
	}
	return alts, true
}

func jsonNode(n parse.Node, ins []jsonAlt) ([]jsonAlt, bool) {
	switch n := n.(type) {
	case *parse.TextNode:
		out := make([]jsonAlt, len(ins))
		for i, a := range ins {
			out[i] = a.with(n.Text, int(n.Pos), advance(a.st, n.Text))
		}
		return out, true
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return ins, true
		}
		out := make([]jsonAlt, len(ins))
		for i, a := range ins {
			switch a.st {
			case stJSONOut:
				out[i] = a.with([]byte(`""`), int(n.Pos), stJSONOut)
			case stJSONStr:
				out[i] = a
			default:
				return nil, false // refused by the escaper
			}
		}
		return out, true
	case *parse.IfNode:
		return jsonBranch(&n.BranchNode, ins)
	case *parse.WithNode:
		return jsonBranch(&n.BranchNode, ins)
	case *parse.RangeNode:
		return jsonBranch(&n.BranchNode, ins)
	}
	return nil, false
}

// jsonBranch renders an if or with both ways, a range zero times (or its
// else) and once.
func jsonBranch(b *parse.BranchNode, ins []jsonAlt) ([]jsonAlt, bool) {
	none, ok := jsonList(b.ElseList, ins)
	if !ok {
		return nil, false
	}
	once, ok := jsonList(b.List, ins)
	if !ok {
		return nil, false
	}
	alts := dedupe(append(none[:len(none):len(none)], once...))
	return alts, len(alts) <= maxJSONAlts
}

// dedupe drops renderings with the same output and end state.
func dedupe(alts []jsonAlt) []jsonAlt {
	seen := make(map[string]bool, len(alts))
	out := alts[:0]
	for _, a := range alts {
		k := string(a.out) + string(rune(a.st))
		if !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}
