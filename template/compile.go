package template

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template/parse"
)

// compiler rewrites a parsed tree: root references become lookups, and it
// collects Refs. The first error wins.
type compiler struct {
	name string // the template's name, for errors
	src  string
	tree *parse.Tree
	refs []ref
	err  *Error
}

type ref struct {
	pos  parse.Pos
	path string
}

func (c *compiler) errorAt(pos parse.Pos, msg string) {
	if c.err != nil {
		return
	}
	line, col := position(c.src, int(pos))
	c.err = &Error{Name: c.name, Line: line, Col: col, Msg: msg}
}

// position converts a byte offset into a 1-based line and column.
func position(src string, off int) (line, col int) {
	if off > len(src) {
		off = len(src)
	}
	before := src[:off]
	line = 1 + strings.Count(before, "\n")
	col = off - strings.LastIndexByte(before, '\n')
	return line, col
}

func (c *compiler) ident(pos parse.Pos, name string) *parse.IdentifierNode {
	return parse.NewIdentifier(name).SetTree(c.tree).SetPos(pos)
}

func (c *compiler) command(pos parse.Pos, args ...parse.Node) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: args}
}

func (c *compiler) dollar(pos parse.Pos) *parse.VariableNode {
	return &parse.VariableNode{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{"$"}}
}

// lookupArgs are the args of `__get $ "path"` (or __opt / __data).
func (c *compiler) lookupArgs(pos parse.Pos, path string, optional bool) []parse.Node {
	if path == "" {
		return []parse.Node{c.ident(pos, fnData), c.dollar(pos)}
	}
	c.refs = append(c.refs, ref{pos: pos, path: path})
	fn := fnGet
	if optional {
		fn = fnOpt
	}
	return []parse.Node{
		c.ident(pos, fn),
		c.dollar(pos),
		&parse.StringNode{NodeType: parse.NodeString, Pos: pos, Quoted: strconv.Quote(path), Text: path},
	}
}

func (c *compiler) lookupPipe(pos parse.Pos, path string, optional bool) *parse.PipeNode {
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{
		c.command(pos, c.lookupArgs(pos, path, optional)...),
	}}
}

func (c *compiler) list(l *parse.ListNode, rootDot bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			c.pipe(n.Pipe, rootDot, false)
		case *parse.IfNode:
			c.pipe(n.Pipe, rootDot, true)
			c.list(n.List, rootDot)
			c.list(n.ElseList, rootDot)
		case *parse.WithNode:
			c.pipe(n.Pipe, rootDot, true)
			c.list(n.List, false) // dot is the with value
			c.list(n.ElseList, rootDot)
		case *parse.RangeNode:
			c.pipe(n.Pipe, rootDot, false)
			c.list(n.List, false) // dot is the element
			c.list(n.ElseList, rootDot)
		case *parse.TemplateNode:
			pos := n.Pos
			if i := strings.LastIndex(c.src[:min(int(pos), len(c.src))], "{{"); i >= 0 {
				pos = parse.Pos(i)
			}
			c.errorAt(pos, "{{template}} is not supported")
		}
	}
}

func (c *compiler) pipe(p *parse.PipeNode, rootDot, optional bool) {
	if p == nil {
		return
	}
	if !optional {
		for _, cmd := range p.Cmds {
			if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && isOptionalFunc(id.Ident) {
				optional = true
				break
			}
		}
	}
	for i, cmd := range p.Cmds {
		if i > 0 && len(cmd.Args) == 1 {
			if path, ok := c.rootPath(cmd.Args[0], rootDot); ok {
				if path == "" {
					path = "."
				}
				c.errorAt(c.start(cmd.Args[0]), path+" is data and cannot receive piped input")
				return
			}
		}
		c.cmd(cmd, rootDot, optional)
	}
}

func (c *compiler) cmd(cmd *parse.CommandNode, rootDot, optional bool) {
	// A command that is only a root reference becomes the lookup call itself.
	if len(cmd.Args) == 1 {
		if path, ok := c.rootPath(cmd.Args[0], rootDot); ok {
			cmd.Args = c.lookupArgs(c.start(cmd.Args[0]), path, optional)
			return
		}
	}
	for i, arg := range cmd.Args {
		if id, ok := arg.(*parse.IdentifierNode); ok && i == 0 && len(cmd.Args) > 1 && isRoot(id.Ident) {
			c.errorAt(id.Pos, id.Ident+" is data, not a function")
			return
		}
		if path, ok := c.rootPath(arg, rootDot); ok {
			cmd.Args[i] = c.lookupPipe(c.start(arg), path, optional)
			continue
		}
		switch a := arg.(type) {
		case *parse.PipeNode:
			c.pipe(a, rootDot, optional)
		case *parse.ChainNode:
			if p, ok := a.Node.(*parse.PipeNode); ok {
				c.pipe(p, rootDot, optional)
			}
		}
	}
}

// start returns where a reference begins in the source. text/template
// positions a multi-part field (.a.b, $.a, lead.a) at its second part.
func (c *compiler) start(n parse.Node) parse.Pos {
	pos := int(n.Position())
	var back int
	var head string
	switch n := n.(type) {
	case *parse.FieldNode:
		if len(n.Ident) > 1 {
			head = "." + n.Ident[0]
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 {
			head = n.Ident[0]
		}
	case *parse.ChainNode:
		if id, ok := n.Node.(*parse.IdentifierNode); ok {
			head = id.Ident
		}
	}
	back = len(head)
	if back > 0 && pos >= back && pos <= len(c.src) && c.src[pos-back:pos] == head {
		return parse.Pos(pos - back)
	}
	return parse.Pos(pos)
}

// rootPath reports whether n reads root data, and the dotted path it reads
// ("" for the whole data map). Unknown roots and internal names are errors.
func (c *compiler) rootPath(n parse.Node, rootDot bool) (string, bool) {
	switch n := n.(type) {
	case *parse.IdentifierNode:
		if strings.HasPrefix(n.Ident, "__") {
			c.errorAt(n.Pos, "function "+strconv.Quote(n.Ident)+" is internal")
			return "", false
		}
		if isRoot(n.Ident) {
			return n.Ident, true
		}
	case *parse.ChainNode:
		if id, ok := n.Node.(*parse.IdentifierNode); ok && isRoot(id.Ident) {
			return id.Ident + "." + strings.Join(n.Field, "."), true
		}
		if id, ok := n.Node.(*parse.IdentifierNode); ok && strings.HasPrefix(id.Ident, "__") {
			c.errorAt(id.Pos, "function "+strconv.Quote(id.Ident)+" is internal")
		}
	case *parse.FieldNode:
		if rootDot {
			return c.checkRoot(c.start(n), n.Ident)
		}
	case *parse.VariableNode:
		if n.Ident[0] == "$" {
			return c.checkRoot(c.start(n), n.Ident[1:])
		}
	case *parse.DotNode:
		if rootDot {
			return "", true
		}
	}
	return "", false
}

func (c *compiler) checkRoot(pos parse.Pos, idents []string) (string, bool) {
	if len(idents) == 0 {
		return "", true
	}
	if !isRoot(idents[0]) {
		c.errorAt(pos, unknownRoot(idents[0]))
		return "", false
	}
	return strings.Join(idents, "."), true
}

// sortedRefs returns the collected paths in source order, deduplicated.
func (c *compiler) sortedRefs() ([]string, []Ref) {
	sort.SliceStable(c.refs, func(i, j int) bool { return c.refs[i].pos < c.refs[j].pos })
	out := make([]string, 0, len(c.refs))
	at := make([]Ref, 0, len(c.refs))
	seen := make(map[string]bool, len(c.refs))
	for _, r := range c.refs {
		if !seen[r.path] {
			seen[r.path] = true
			out = append(out, r.path)
			line, col := position(c.src, int(r.pos))
			at = append(at, Ref{Path: r.path, Line: line, Col: col})
		}
	}
	return out, at
}

// unknownRoot is the message for data read from a root that is not one.
func unknownRoot(name string) string {
	return "unknown data root " + strconv.Quote(name) + " (want one of " + strings.Join(rootNames[:], ", ") + ")"
}

// undefinedFnRE matches text/template's error for an unknown function.
var undefinedFnRE = regexp.MustCompile(`^function "([A-Za-z_][A-Za-z0-9_]*)" not defined$`)

// dataTypo turns text/template's `function "laed" not defined` for
// laed.email, a field path written without its dot, into the message the
// same typo gets with the dot ({{.laed.email}}): an unknown data root, at
// the name. Other unknown functions are left as they are.
func dataTypo(e *Error, src string) {
	m := undefinedFnRE.FindStringSubmatch(e.Msg)
	if m == nil {
		return
	}
	loc := regexp.MustCompile(`(^|[^A-Za-z0-9_.$])` + m[1] + `\.[A-Za-z_]`).FindStringSubmatchIndex(src)
	if loc == nil {
		return
	}
	e.Line, e.Col = position(src, loc[3])
	e.Msg = unknownRoot(m[1])
}

// parseErrRE matches what follows "template: NAME:" in a text/template parse error.
var parseErrRE = regexp.MustCompile(`^(\d+)(?::(\d+))?: `)

// parseError converts a parse error of the text/template id into an
// *Error of the template name.
func parseError(name, id string, err error) *Error {
	msg := err.Error()
	e := &Error{Name: name, Msg: msg}
	rest, ok := strings.CutPrefix(msg, "template: "+id+":")
	if !ok {
		return e
	}
	m := parseErrRE.FindStringSubmatch(rest)
	if m == nil {
		e.Msg = strings.TrimSpace(rest)
		return e
	}
	e.Line, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		e.Col, _ = strconv.Atoi(m[2])
	}
	e.Msg = rest[len(m[0]):]
	return e
}

// defineRE finds {{define}}/{{block}}, which this package does not support.
var defineRE = regexp.MustCompile(`\{\{-?\s*(define|block)\b`)
