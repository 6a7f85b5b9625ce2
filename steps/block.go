package steps

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// lines is the text of a file, a line an element, for positions inside
// block scalars (nil: not known).
type lines []string

func splitLines(src []byte) lines { return strings.Split(string(src), "\n") }

// block places the text of a block scalar (| or >) in its file: each piece
// of the value that one line of the file holds, with where that line's
// text starts. yaml.v3 gives the indicator's position only; a template's
// line:col inside the value is mapped through it.
type block []blockPiece

type blockPiece struct {
	off       int // offset of the piece in the value
	line, col int // where it is in the file
}

// blockOf maps the block scalar n, or returns nil (not a block scalar, an
// explicit indentation indicator, or no source).
func (ls lines) blockOf(n *yaml.Node) block {
	if ls == nil || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 || n.Line < 1 || n.Line > len(ls) {
		return nil
	}
	if head := ls[n.Line-1]; n.Column-1 < len(head) && strings.ContainsAny(strings.Fields(head[n.Column-1:] + " ")[0], "123456789") {
		return nil // |2: the indentation is not the first line's
	}
	var b block
	indent, at := -1, 0
	for i := n.Line; i < len(ls) && at < len(n.Value); i++ {
		text := strings.TrimRight(ls[i], "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		lead := len(text) - len(strings.TrimLeft(text, " "))
		if indent < 0 {
			indent = lead
		}
		if lead < indent {
			break
		}
		piece := text[indent:]
		j := strings.Index(n.Value[at:], piece)
		if j < 0 {
			break
		}
		b = append(b, blockPiece{off: at + j, line: i + 1, col: indent + 1})
		at += j + len(piece)
	}
	return b
}

// at is the file position of line:col (1-based) of the value v.
func (b block) at(p Pos, v string, line, col int) Pos {
	off := 0
	for ; line > 1; line-- {
		nl := strings.IndexByte(v[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	off += max(col, 1) - 1
	for i := len(b) - 1; i >= 0; i-- {
		if b[i].off <= off {
			p.Line, p.Col = b[i].line, b[i].col+off-b[i].off
			return p
		}
	}
	return p
}

// IsBlock reports whether the string is a block scalar (| or >) whose
// lines are placed in the file.
func (s String) IsBlock() bool { return s.block != nil }

// At is the position of line:col (1-based; col 0: unknown) of the string's
// text: inside a block scalar, the line of the file that holds it and its
// column there.
func (s String) At(line, col int) Pos {
	if s.block != nil {
		return s.block.at(s.Pos, s.Value, line, col)
	}
	p := s.Pos
	if line > 1 {
		p.Line += line - 1
		if col > 0 {
			p.Col = col
		}
		return p
	}
	if col > 1 {
		p.Col += col - 1
	}
	return p
}
