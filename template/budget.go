package template

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"text/template/parse"
)

// The work of one render is bounded. text/template has no hook into its
// executor, so Compile rewrites the tree: every {{range}} body starts with
// a call that counts the iteration, and every function call is followed by
// one that counts the call and the size of its result, with the values
// passed to it counted the same way. The counters live in the render's
// execCtx, which also carries the render's context.
const (
	// MaxSteps is the most steps one render may take: a step is one
	// iteration of a {{range}}, or one value a function takes or returns.
	MaxSteps = 1_000_000
	// MaxWork is the most bytes of values one render may pass to and get
	// back from functions: a string counts its length, a list or map 16
	// bytes an entry (walked deeply for functions that walk their
	// arguments, such as printf, toString, join or deepEqual).
	MaxWork = 64 << 20
)

// budget is how much work one render may do.
type budget struct {
	steps int
	work  int64
}

// WithBudget sets how much work one render of the Set's templates may do:
// at most steps steps and work bytes of work (see MaxSteps and MaxWork,
// the defaults). A value below 1 keeps the default.
func WithBudget(steps int, work int64) Option {
	return func(s *Set) {
		if steps > 0 {
			s.budget.steps = steps
		}
		if work > 0 {
			s.budget.work = work
		}
	}
}

// ErrBudget is matched (errors.Is) by render errors of a template that
// took more than MaxSteps steps or MaxWork bytes of work.
var ErrBudget = errors.New("template render budget exceeded")

// budgetError is a render that ran out of budget or was cancelled.
type budgetError struct {
	msg   string
	cause error // ErrBudget, or the context's error
}

func (e *budgetError) Error() string { return e.msg }
func (e *budgetError) Unwrap() error { return e.cause }

// Internal functions of the budget.
const (
	fnTick       = "__tick"   // __tick $: one range iteration
	fnCharge     = "__charge" // __charge $ VALUE: one value, by its size
	fnChargeDeep = "__chargedeep"
)

// deepFuncs walk their arguments (formatting, comparing or copying them
// whole) while their result can be small, so their arguments are charged
// by their deep size.
var deepFuncs = map[string]bool{
	"print": true, "printf": true, "println": true, "toString": true, "toStrings": true,
	"cat": true, "join": true, "deepEqual": true, "deepCopy": true, "mustDeepCopy": true,
	"has": true, "mustHas": true, "without": true, "mustWithout": true, "uniq": true, "mustUniq": true,
	"sortAlpha": true, "toJson": true, "mustToJson": true, "toPrettyJson": true, "mustToPrettyJson": true,
	"toRawJson": true, "mustToRawJson": true, "json": true, "fail": true, "eq": true, "ne": true,
}

// tick counts one step and notices a cancelled context.
func (c *execCtx) tick() error {
	c.steps++
	if c.steps > c.limit.steps {
		return &budgetError{msg: "render budget exceeded (more than " + strconv.Itoa(c.limit.steps) +
			" steps: loop iterations and values passed to functions); bound the loops that lead data drives", cause: ErrBudget}
	}
	if c.done != nil {
		select {
		case <-c.done:
			err := context.Cause(c.ctx)
			return &budgetError{msg: "render stopped: " + err.Error(), cause: err}
		default:
		}
	}
	return nil
}

// charge counts one step and n bytes of work.
func (c *execCtx) charge(n int64) error {
	c.work += n
	if c.work > c.limit.work {
		return &budgetError{msg: "render budget exceeded (more than " + sizeText(c.limit.work) +
			" of values passed to functions); bound the loops that lead data drives", cause: ErrBudget}
	}
	return c.tick()
}

// remaining is how many bytes of work the render may still do.
func (c *execCtx) remaining() int64 { return c.limit.work - c.work + 1 }

// sizeText writes n bytes as "64 MiB", or "1000 bytes" when not whole MiB.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// entryCost is what one entry of a list or map counts.
const entryCost = 16

// shallowSize is v's size without looking inside its elements.
func shallowSize(v any) int64 {
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		return 0
	case string:
		return int64(len(x))
	case []any:
		return entryCost * int64(len(x))
	case map[string]any:
		return entryCost * int64(len(x))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return int64(rv.Len())
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Chan:
		return entryCost * int64(rv.Len())
	}
	return 0
}

// deepSize is v's size including its elements, walked until it passes
// limit (so computing it costs no more than the work it counts).
func deepSize(v any, limit int64) int64 {
	n := shallowSize(v)
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if n > limit {
				break
			}
			n += deepSize(e, limit-n)
		}
	case map[string]any:
		for k, e := range x {
			if n > limit {
				break
			}
			n += int64(len(k)) + deepSize(e, limit-n)
		}
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			if rv.Type().Elem().Kind() == reflect.Uint8 {
				return int64(rv.Len())
			}
			for i := 0; i < rv.Len() && n <= limit; i++ {
				n += deepSize(rv.Index(i).Interface(), limit-n)
			}
		case reflect.Map:
			for it := rv.MapRange(); it.Next() && n <= limit; {
				n += deepSize(it.Key().Interface(), limit-n) + deepSize(it.Value().Interface(), limit-n)
			}
		}
	}
	return n
}

// meter rewrites an escaped tree so that a render counts its work: each
// {{range}} body starts with {{__tick $}}, each function call is followed
// by __charge $ (its result), and each value passed to one (a variable,
// a field, dot, or a data lookup) goes through __charge $ first.
type meter struct{ c *compiler }

func (m meter) list(l *parse.ListNode) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			m.pipe(n.Pipe)
		case *parse.IfNode:
			m.pipe(n.Pipe)
			m.list(n.List)
			m.list(n.ElseList)
		case *parse.WithNode:
			m.pipe(n.Pipe)
			m.list(n.List)
			m.list(n.ElseList)
		case *parse.RangeNode:
			m.pipe(n.Pipe)
			m.list(n.List)
			m.list(n.ElseList)
			tick := &parse.ActionNode{NodeType: parse.NodeAction, Pos: n.Pos, Line: n.Line, Pipe: &parse.PipeNode{
				NodeType: parse.NodePipe, Pos: n.Pos, Line: n.Line,
				Cmds: []*parse.CommandNode{m.c.command(n.Pos, m.c.ident(n.Pos, fnTick), m.c.dollar(n.Pos))},
			}}
			if n.List == nil {
				n.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
			}
			n.List.Nodes = append([]parse.Node{tick}, n.List.Nodes...)
		}
	}
}

// funcName is the function a command calls, or "" when it calls none (a
// value, a variable, a field) or an internal one.
func funcName(cmd *parse.CommandNode) string {
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && !strings.HasPrefix(id.Ident, "__") {
		return id.Ident
	}
	return ""
}

func (m meter) charge(pos parse.Pos, deep bool) *parse.CommandNode {
	fn := fnCharge
	if deep {
		fn = fnChargeDeep
	}
	return m.c.command(pos, m.c.ident(pos, fn), m.c.dollar(pos))
}

func (m meter) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	cmds := make([]*parse.CommandNode, 0, 2*len(p.Cmds))
	for i, cmd := range p.Cmds {
		name := funcName(cmd)
		for j, a := range cmd.Args {
			if j == 0 && name != "" {
				continue
			}
			cmd.Args[j] = m.arg(a, name != "", deepFuncs[name])
		}
		cmds = append(cmds, cmd)
		next := ""
		if i+1 < len(p.Cmds) {
			next = funcName(p.Cmds[i+1])
		}
		if name != "" || next != "" {
			// a function's result, or a value piped into a function
			cmds = append(cmds, m.charge(cmd.Position(), deepFuncs[next]))
		}
	}
	p.Cmds = cmds
}

// arg meters a command argument; passed says whether the command calls a
// function, so that a value read here is passed to it.
func (m meter) arg(a parse.Node, passed, deep bool) parse.Node {
	switch a := a.(type) {
	case *parse.PipeNode:
		m.pipe(a)
		if !passed || len(a.Cmds) == 0 || len(a.Decl) > 0 {
			return a
		}
		if last := a.Cmds[len(a.Cmds)-1]; charged(last) {
			if deep {
				last.Args[0] = m.c.ident(last.Position(), fnChargeDeep)
			}
		} else {
			a.Cmds = append(a.Cmds, m.charge(a.Position(), deep))
		}
		return a
	case *parse.ChainNode:
		if p, ok := a.Node.(*parse.PipeNode); ok {
			m.pipe(p)
		}
	case *parse.FieldNode, *parse.VariableNode, *parse.DotNode:
		if v, ok := a.(*parse.VariableNode); ok && len(v.Ident) == 1 && v.Ident[0] == "$" {
			return a
		}
	default:
		return a
	}
	if !passed {
		return a
	}
	pos := a.Position()
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{
		m.c.command(pos, a), m.charge(pos, deep),
	}}
}

// charged reports whether cmd charges a value.
func charged(cmd *parse.CommandNode) bool {
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	return ok && (id.Ident == fnCharge || id.Ident == fnChargeDeep)
}
