package source

import (
	"encoding/json"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/tidwall/gjson"
)

// stop_when may read the page's answer as response.body. Decoding a whole
// page into maps for it would cost many times the page (a map per record):
// the body stop_when sees holds only the values it reads, each decoded in
// full, on the paths that lead to them.

// bodyPaths are the parts of response.body a condition reads.
type bodyPaths struct {
	all   bool       // the body as a whole (or by a computed key)
	paths [][]string // the keys under body of each value read
}

// stopBodyPaths finds the values under response.body that the condition
// src reads as values (not only to reach something under them): each
// chain of constant keys from response.body, such as response.body.meta.
// more, counts where it is not itself the start of a longer chain.
func stopBodyPaths(src string) bodyPaths {
	tree, err := parser.Parse(src)
	if err != nil {
		return bodyPaths{all: true}
	}
	v := &chainVisitor{uses: map[string]int{}, inner: map[string]int{}, parts: map[string][]string{}}
	ast.Walk(&tree.Node, v)
	var out bodyPaths
	for id, parts := range v.parts {
		if v.uses[id] <= v.inner[id] || len(parts) < 2 || parts[0] != "response" || parts[1] != "body" {
			continue
		}
		if len(parts) == 2 {
			return bodyPaths{all: true}
		}
		out.paths = append(out.paths, parts[2:])
	}
	return out
}

// chainVisitor counts the chains of constant keys (a.b["c"]) of a
// condition: how often each appears, and how often as the start of a
// longer one.
type chainVisitor struct {
	uses, inner map[string]int
	parts       map[string][]string
}

func (v *chainVisitor) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	parts, ok := chain(m)
	if !ok {
		return
	}
	id := strings.Join(parts, "\x00")
	v.uses[id]++
	v.parts[id] = parts
	if inner, ok := m.Node.(*ast.MemberNode); ok {
		if p, ok := chain(inner); ok {
			v.inner[strings.Join(p, "\x00")]++
		}
	}
}

// chain returns the keys of a chain such as response.body.meta, or false
// when a key is computed.
func chain(m *ast.MemberNode) ([]string, bool) {
	var parts []string
	var n ast.Node = m
	for {
		switch t := n.(type) {
		case *ast.MemberNode:
			s, ok := t.Property.(*ast.StringNode)
			if !ok {
				return nil, false
			}
			parts = append(parts, s.Value)
			n = t.Node
		case *ast.IdentifierNode:
			parts = append(parts, t.Value)
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
			return parts, true
		default:
			return nil, false
		}
	}
}

// stopBody is response.body for stop_when: the values it reads (decoded
// as encoding/json does) when the body is a JSON object, the whole body
// when it reads that, and the text when the body is not JSON.
func (s *Spec) stopBody(body []byte) any {
	if !json.Valid(body) {
		return string(body)
	}
	root := gjson.ParseBytes(body)
	if s.stopRead.all || !root.IsObject() {
		v, _ := decodeAny(body)
		return v
	}
	out := map[string]any{}
	for _, p := range s.stopRead.paths {
		graft(out, root, p)
	}
	return out
}

// graft sets in m the value at keys under the object cur, with the
// objects on the way holding only the keys on it.
func graft(m map[string]any, cur gjson.Result, keys []string) {
	for i, key := range keys {
		child, ok := member(cur, key)
		if !ok {
			return
		}
		if i == len(keys)-1 || !child.IsObject() {
			var v any
			_ = json.Unmarshal([]byte(child.Raw), &v) // valid: the body is
			m[key] = v
			return
		}
		sub, ok := m[key].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[key] = sub
		}
		m, cur = sub, child
	}
}

// member is the value of key in the object obj: the last one, as
// encoding/json keeps it when a key repeats.
func member(obj gjson.Result, key string) (gjson.Result, bool) {
	var found gjson.Result
	ok := false
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.String() == key {
			found, ok = v, true
		}
		return true
	})
	return found, ok
}
