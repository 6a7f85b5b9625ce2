// Package cond compiles and evaluates the conditions of an integration file
// (`when:`, `failure_when:`, `error_when:` …).
//
// Conditions are github.com/expr-lang/expr expressions over the roots lead,
// settings, vars, steps, captured and response, for example
//
//	lead.value > 100
//	lead.state in ["CA", "TX"]
//	lead.email endsWith ".gov"
//	captured.blacklisted == true
//
// A condition is compiled once, when the integration loads; a compile error
// carries the line and column inside the expression. A missing field reads as
// nil, and compares equal to the empty string, so `lead.email != ""` does not
// hold for a lead without an email.
//
// Where a condition needs true or false (the whole condition, the operands
// of && || !, the test of ?:, the predicate of all, any, filter …), a value
// whose type is only known at run time — `lead.vip`, `captured.ok`,
// `lead.l[0]` — is a compile error with a hint: a CSV lead's fields are all
// strings, so the value would be an error (or mean something else) per
// lead. Write the comparison meant: `lead.vip == true`, `lead.vip != ""`.
package cond

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Roots are the names a condition may start from.
var Roots = []string{"lead", "settings", "vars", "steps", "captured", "response", "batch", "state", "page"}

// Program is a compiled condition. It is immutable and safe for concurrent use.
type Program struct {
	src  string
	prog *vm.Program
	refs []string
	// roots are the roots the expression names: Eval needs only these in
	// its environment.
	roots []string
}

// Error is a compile error; Line and Col are 1-based positions inside the
// expression source (Col is 0 when unknown).
type Error struct {
	Line, Col int
	Msg       string
	Hint      string // how to fix it, when there is more to say than Msg
}

// Error implements error.
func (e *Error) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

func compileEnv() map[string]any {
	env := make(map[string]any, len(Roots))
	for _, r := range Roots {
		env[r] = map[string]any{}
	}
	return env
}

// Compile compiles src as a boolean condition. Unknown root names, syntax
// errors, non-boolean expressions and values of unknown type where a
// boolean is needed (see the package documentation) are errors of type
// *Error.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Line: 1, Col: 1, Msg: "empty condition"}
	}
	prog, err := expr.Compile(src, expr.Env(compileEnv()), expr.AsBool(), expr.Patch(blankIsNil{}))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &Error{Line: max(fe.Line, 1), Col: fe.Column + 1, Msg: fe.Message}
		}
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "expected bool, but got "); ok {
			msg = "a condition must be true or false, but this one gives " + rest
		}
		return nil, &Error{Line: 1, Col: firstCol(src), Msg: msg}
	}
	// The optimized program's tree may have lost types; check the
	// boolean positions on the checked, unoptimized one.
	typed, err := expr.Compile(src, expr.Env(compileEnv()), expr.AsBool(), expr.Patch(blankIsNil{}), expr.Optimize(false))
	if err == nil {
		if e := checkBool(src, typed.Node(), true); e != nil {
			return nil, e
		}
	}
	p := &Program{src: src, prog: prog}
	p.refs = collectRefs(prog.Node())
	p.roots = usedRoots(prog.Node())
	return p, nil
}

// checkBool refuses a value whose type is known only when a lead arrives
// (lead.x, captured.ok, a list element) where a condition needs true or
// false: the root, the operands of && || and !, the test of ?: and the
// predicates of all, any, filter, …. Such a value is a string for a CSV
// lead and may be anything in JSON, so the condition would fail (or mean
// something else) per lead; a comparison says what is meant.
func checkBool(src string, n ast.Node, boolPos bool) *Error {
	if boolPos {
		switch x := n.(type) {
		case *ast.BinaryNode:
			switch x.Operator {
			case "&&", "||", "and", "or":
				if e := checkBool(src, x.Left, true); e != nil {
					return e
				}
				return checkBool(src, x.Right, true)
			}
		case *ast.UnaryNode:
			if x.Operator == "!" || x.Operator == "not" {
				return checkBool(src, x.Node, true)
			}
		case *ast.ConditionalNode:
			for _, c := range []ast.Node{x.Cond, x.Exp1, x.Exp2} {
				if e := checkBool(src, c, true); e != nil {
					return e
				}
			}
			return nil
		}
		if n.Nature().IsUnknown(nil) {
			line, col := lineCol(src, start(n))
			what := n.String()
			switch n.(type) {
			case *ast.BinaryNode, *ast.ConditionalNode:
				what = "(" + what + ")"
			}
			return &Error{Line: line, Col: col,
				Msg: what + " is a value, not a condition: its type is only known at run time (a CSV field is always a string), " +
					"so it may not be true or false",
				Hint: "compare it: " + what + " == true for a JSON boolean, " + what + ` != "" for a field that is set`}
		}
	}
	return checkChildren(src, n)
}

// checkChildren runs checkBool on the nodes below n, marking the bodies of
// predicates (all, any, none, one, filter, find…, count) as boolean.
func checkChildren(src string, n ast.Node) *Error {
	var kids []ast.Node
	pred := false
	switch x := n.(type) {
	case *ast.BinaryNode:
		kids = []ast.Node{x.Left, x.Right}
	case *ast.UnaryNode:
		kids = []ast.Node{x.Node}
	case *ast.ConditionalNode:
		kids = []ast.Node{x.Cond, x.Exp1, x.Exp2}
	case *ast.ChainNode:
		kids = []ast.Node{x.Node}
	case *ast.MemberNode:
		kids = []ast.Node{x.Node, x.Property}
	case *ast.SliceNode:
		kids = []ast.Node{x.Node, x.From, x.To}
	case *ast.CallNode:
		kids = append([]ast.Node{x.Callee}, x.Arguments...)
	case *ast.BuiltinNode:
		kids = x.Arguments
		switch x.Name {
		case "all", "any", "none", "one", "filter", "find", "findIndex", "findLast", "findLastIndex", "count":
			pred = true
		}
	case *ast.PredicateNode:
		kids = []ast.Node{x.Node}
	case *ast.ArrayNode:
		kids = x.Nodes
	case *ast.MapNode:
		kids = x.Pairs
	case *ast.PairNode:
		kids = []ast.Node{x.Key, x.Value}
	case *ast.SequenceNode:
		kids = x.Nodes
	case *ast.VariableDeclaratorNode:
		kids = []ast.Node{x.Value, x.Expr}
	}
	for _, k := range kids {
		if k == nil {
			continue
		}
		var e *Error
		if p, ok := k.(*ast.PredicateNode); ok && pred {
			e = checkBool(src, p.Node, true)
		} else {
			e = checkChildren(src, k)
		}
		if e != nil {
			return e
		}
	}
	return nil
}

// start is the rune offset where the expression n begins (expr places a
// member access at its last property, a binary operator at the operator).
func start(n ast.Node) int {
	switch x := n.(type) {
	case *ast.MemberNode:
		return start(x.Node)
	case *ast.ChainNode:
		return start(x.Node)
	case *ast.SliceNode:
		return start(x.Node)
	case *ast.BinaryNode:
		return min(start(x.Left), x.Location().From)
	case *ast.CallNode:
		return start(x.Callee)
	}
	return n.Location().From
}

// lineCol is the 1-based line and column of the rune offset off in src.
func lineCol(src string, off int) (line, col int) {
	line, col = 1, 1
	i := 0
	for _, r := range src {
		if i == off {
			break
		}
		i++
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// firstCol is the 1-based column of the first non-space byte of src's
// first line.
func firstCol(src string) int {
	line, _, _ := strings.Cut(src, "\n")
	return len(line) - len(strings.TrimLeft(line, " \t")) + 1
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.src }

// Refs returns the dotted root paths the condition reads, such as
// "steps.auth.token" or "lead.email", in order of appearance.
func (p *Program) Refs() []string { return p.refs }

// Eval runs the condition against env, a map from root name to value. Roots
// missing from env read as empty objects.
func (p *Program) Eval(env map[string]any) (bool, error) {
	st := evalPool.Get().(*evalState)
	defer st.release()
	full := env
	for _, r := range p.roots {
		if _, ok := env[r]; !ok {
			full = st.env
			for _, r := range p.roots {
				if v, ok := env[r]; ok {
					full[r] = v
				} else {
					full[r] = emptyRoot
				}
			}
			break
		}
	}
	out, err := st.vm.Run(p.prog, full)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return false, fmt.Errorf("condition %q: %s", p.src, fe.Message)
		}
		return false, fmt.Errorf("condition %q: %w", p.src, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition %q: result is %T, not bool", p.src, out)
	}
	return b, nil
}

// emptyRoot stands in for a root the caller did not give. Conditions only
// read their environment, so one shared empty map serves every evaluation.
var emptyRoot = map[string]any{}

// evalState is what one evaluation needs besides the program: a VM (which
// keeps its stack between runs) and the map of roots for a caller that
// did not give all of them. Both are reused through evalPool, so an
// evaluation allocates only what the expression itself does.
type evalState struct {
	vm  vm.VM
	env map[string]any
}

var evalPool = sync.Pool{New: func() any {
	return &evalState{env: make(map[string]any, len(Roots))}
}}

// release drops the references of the last evaluation and returns st to
// the pool.
func (st *evalState) release() {
	clear(st.env)
	clear(st.vm.Variables)
	clear(st.vm.Stack[:cap(st.vm.Stack)])
	evalPool.Put(st)
}

// blankIsNil makes `x == ""` and `x != ""` treat a missing (nil) x as the
// empty string, which is what authors mean by "the lead has no email".
type blankIsNil struct{}

func (blankIsNil) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || (b.Operator != "==" && b.Operator != "!=") {
		return
	}
	wrap := func(side *ast.Node, other ast.Node) {
		if s, ok := other.(*ast.StringNode); ok && s.Value == "" {
			ast.Patch(side, &ast.BinaryNode{Operator: "??", Left: *side, Right: &ast.StringNode{Value: ""}})
		}
	}
	wrap(&b.Left, b.Right)
	wrap(&b.Right, b.Left)
}

// usedRoots returns the roots the expression names (every root when it
// reads $env, which reaches them all).
func usedRoots(root ast.Node) []string {
	v := &rootVisitor{}
	ast.Walk(&root, v)
	if v.all {
		return Roots
	}
	var out []string
	for _, r := range Roots {
		if v.seen[r] {
			out = append(out, r)
		}
	}
	return out
}

type rootVisitor struct {
	seen map[string]bool
	all  bool
}

func (v *rootVisitor) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if id.Value == "$env" {
		v.all = true
	}
	if v.seen == nil {
		v.seen = map[string]bool{}
	}
	v.seen[id.Value] = true
}

type refVisitor struct {
	seen map[string]bool
	refs []string
}

func (v *refVisitor) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	path, ok := memberPath(m)
	if !ok || v.seen[path] {
		return
	}
	// keep only the longest chain: drop prefixes already recorded
	v.seen[path] = true
	v.refs = append(v.refs, path)
}

// memberPath renders a chain such as steps.auth.token, or false when the
// chain contains computed members.
func memberPath(m *ast.MemberNode) (string, bool) {
	var parts []string
	var n ast.Node = m
	for {
		switch t := n.(type) {
		case *ast.MemberNode:
			s, ok := t.Property.(*ast.StringNode)
			if !ok {
				return "", false
			}
			parts = append(parts, s.Value)
			n = t.Node
		case *ast.IdentifierNode:
			parts = append(parts, t.Value)
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
			return strings.Join(parts, "."), true
		default:
			return "", false
		}
	}
}

func collectRefs(root ast.Node) []string {
	v := &refVisitor{seen: map[string]bool{}}
	ast.Walk(&root, v)
	// ast.Walk visits children before parents, so inner prefixes come first;
	// drop every path that is a prefix of a longer one.
	out := v.refs[:0:0]
	for _, r := range v.refs {
		prefix := false
		for _, o := range v.refs {
			if len(o) > len(r) && strings.HasPrefix(o, r+".") {
				prefix = true
				break
			}
		}
		if !prefix {
			out = append(out, r)
		}
	}
	return out
}
