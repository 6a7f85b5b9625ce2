package steps

import "strings"

// flowProblem finds where a flow collection ({…} or […}) starting on line
// (1-based) goes wrong, for yaml.v3 errors that name only the line where
// the collection opens. It returns the 1-based line and column of the
// offending token and what was wrong, or ok false when it cannot tell.
func flowProblem(src []byte, line int) (l, c int, what string, ok bool) {
	lines := strings.SplitAfter(string(src), "\n")
	if line < 1 || line > len(lines) {
		return 0, 0, "", false
	}
	off := 0
	for _, s := range lines[:line-1] {
		off += len(s)
	}
	p := &flowParser{src: string(src)}
	// the first flow indicator of the line outside quotes and comments
	start := -1
	for i, q := off, byte(0); i < len(p.src) && p.src[i] != '\n'; i++ {
		ch := p.src[i]
		switch {
		case q != 0:
			if ch == q {
				q = 0
			}
		case ch == '"' || ch == '\'':
			q = ch
		case ch == '#' && (i == off || p.src[i-1] == ' '):
			i = len(p.src)
		case ch == '{' || ch == '[':
			start = i
		}
		if start >= 0 {
			break
		}
	}
	if start < 0 {
		return 0, 0, "", false
	}
	p.pos = start
	if p.node() {
		return 0, 0, "", false // it parses: not the problem we look for
	}
	l, c = p.lineCol(p.errAt)
	return l, c, p.err, true
}

type flowParser struct {
	src   string
	pos   int
	errAt int
	err   string
}

func (p *flowParser) lineCol(at int) (int, int) {
	l := 1 + strings.Count(p.src[:at], "\n")
	return l, at - strings.LastIndexByte(p.src[:at], '\n')
}

func (p *flowParser) fail(at int, msg string) bool {
	p.errAt, p.err = at, msg
	return false
}

// skip passes white space, line breaks and comments.
func (p *flowParser) skip() {
	for p.pos < len(p.src) {
		switch ch := p.src[p.pos]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			p.pos++
		case ch == '#' && (p.pos == 0 || strings.ContainsRune(" \t\n", rune(p.src[p.pos-1]))):
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *flowParser) node() bool {
	p.skip()
	if p.pos >= len(p.src) {
		return p.fail(len(p.src)-1, "the file ends inside a { } or [ ]")
	}
	switch p.src[p.pos] {
	case '{':
		return p.collection('}', true)
	case '[':
		return p.collection(']', false)
	case '"', '\'':
		q, at := p.src[p.pos], p.pos
		for p.pos++; p.pos < len(p.src); p.pos++ {
			if p.src[p.pos] == q {
				if q == '\'' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
					p.pos++
					continue
				}
				p.pos++
				return true
			}
			if q == '"' && p.src[p.pos] == '\\' {
				p.pos++
			}
		}
		return p.fail(at, "this quoted string is never closed")
	case ',', '}', ']', ':':
		return true // an empty value
	}
	// a plain scalar: up to a flow indicator, ": " or " #"
	for p.pos < len(p.src) {
		ch := p.src[p.pos]
		if strings.IndexByte(",{}[]", ch) >= 0 {
			break
		}
		if ch == ':' && (p.pos+1 == len(p.src) || strings.IndexByte(" \t\n,{}[]", p.src[p.pos+1]) >= 0) {
			break
		}
		if ch == '#' && p.pos > 0 && p.src[p.pos-1] == ' ' {
			break
		}
		p.pos++
	}
	return true
}

func (p *flowParser) collection(end byte, mapping bool) bool {
	open := p.pos
	p.pos++
	for {
		p.skip()
		if p.pos >= len(p.src) {
			return p.fail(open, "this "+string(p.src[open])+" is never closed")
		}
		if p.src[p.pos] == end {
			p.pos++
			return true
		}
		if !p.node() {
			return false
		}
		p.skip()
		if p.pos < len(p.src) && p.src[p.pos] == ':' {
			p.pos++
			if !p.node() {
				return false
			}
			p.skip()
			if p.pos < len(p.src) && p.src[p.pos] == ':' {
				return p.fail(p.pos, "a second ':' in one entry: quote a value that contains ': '")
			}
		}
		if p.pos >= len(p.src) {
			return p.fail(open, "this "+string(p.src[open])+" is never closed")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case end:
			p.pos++
			return true
		default:
			return p.fail(p.pos, "expected ',' or '"+string(end)+"' here")
		}
	}
}
