package steps

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// MaxAliasNodes bounds how many nodes YAML aliases may add to a file when
// expanded. Anchors and aliases (&x, *x) share small parts of a file; a
// "billion laughs" of aliases to aliases would otherwise turn a few hundred
// bytes into gigabytes once a structured value (a json body, vars) is walked.
const MaxAliasNodes = 100_000

// standardTag reports whether tag is one a file may use; other tags (!foo,
// !!python/object) mean nothing to plumb and are reported.
func standardTag(tag string) bool {
	switch tag {
	case "", "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!!binary", "!!timestamp", "!!merge":
		return true
	}
	return false
}

// checkYAML reports, before anything is decoded, unknown tags, aliases that
// refer to a node containing them, and alias expansion beyond
// MaxAliasNodes. It walks without recursion and visits each node once.
// It returns false when decoding must not go on.
func checkYAML(file string, root *yaml.Node, errs *ErrorList) bool {
	pos := func(n *yaml.Node) Pos { return Pos{File: file, Line: n.Line, Col: n.Column} }
	const limit = int64(MaxAliasNodes) * 16 // sizes saturate here

	type frame struct {
		n    *yaml.Node
		next int // next child to visit
		sum  int64
	}
	size := map[*yaml.Node]int64{}      // expanded size of a finished node
	open := map[*yaml.Node]bool{}       // on the stack
	visitedTag := map[*yaml.Node]bool{} // tag already checked
	var real int64                      // nodes as written
	var biggest *yaml.Node              // the alias that expands most
	var biggestSize int64
	ok := true

	stack := []frame{{n: root}}
	open[root] = true
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		n := f.n
		if f.next == 0 && !visitedTag[n] {
			visitedTag[n] = true
			real++
			if !standardTag(n.Tag) && n.Kind != yaml.AliasNode && n.Kind != yaml.DocumentNode {
				errs.Add(pos(n), "plumb reads plain YAML: remove the tag", "unknown YAML tag %s", strconv.Quote(n.Tag))
			}
		}
		children := n.Content
		if n.Kind == yaml.AliasNode {
			children = nil
			if n.Alias != nil {
				children = []*yaml.Node{n.Alias}
			}
		}
		if f.next < len(children) {
			c := children[f.next]
			f.next++
			if s, done := size[c]; done {
				f.sum = min(f.sum+s, limit)
				continue
			}
			if open[c] {
				errs.Add(pos(n), "an alias cannot refer to the value that contains it", "YAML alias %s refers to a node containing it", strconv.Quote("*"+n.Value))
				ok = false
				continue
			}
			open[c] = true
			stack = append(stack, frame{n: c})
			continue
		}
		s := f.sum
		if n.Kind != yaml.AliasNode {
			s = min(s+1, limit)
		} else if s > biggestSize {
			biggest, biggestSize = n, s
		}
		size[n] = s
		delete(open, n)
		stack = stack[:len(stack)-1]
		if len(stack) > 0 {
			p := &stack[len(stack)-1]
			p.sum = min(p.sum+s, limit)
		}
	}
	if total := size[root]; ok && total-real > MaxAliasNodes {
		errs.Add(pos(biggest), "anchors and aliases (&x, *x) are for sharing small parts of a file; write large values out",
			"YAML aliases expand to more than %d nodes", MaxAliasNodes)
		ok = false
	}
	return ok
}
