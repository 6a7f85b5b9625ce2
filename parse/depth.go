package parse

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/antchfx/xmlquery"
)

// DefaultMaxDepth is how deeply a JSON or XML response body may nest
// (arrays and objects, or elements) unless MaxDepth says otherwise. The
// parsers behind json and xpath captures use memory, and stack, in
// proportion to nesting: 10 MiB of "[[[[" would cost gigabytes.
const DefaultMaxDepth = 512

// DocOption configures a Doc.
type DocOption func(*Doc)

// MaxDepth sets how deeply a JSON or XML body may nest before it is
// refused without being parsed (default DefaultMaxDepth; n < 1 keeps the
// default).
func MaxDepth(n int) DocOption {
	return func(d *Doc) {
		if n >= 1 {
			d.maxDepth = n
		}
	}
}

// depthLimit is the nesting limit of d's body.
func (d *Doc) depthLimit() int {
	if d.maxDepth < 1 {
		return DefaultMaxDepth
	}
	return d.maxDepth
}

// depthError is the error of a body nested beyond the limit.
func depthError(format string, limit, offset int) error {
	return fmt.Errorf("response body is not valid %s: it nests deeper than %d levels (at offset %d); the limit protects the parser", format, limit, offset)
}

// jsonDepth scans b once, without recursion, and returns the offset of the
// first '[' or '{' that opens level limit+1, or -1. Brackets inside strings
// do not count. The scan does not validate: the parser does that after.
// A body of at most limit bytes cannot open limit+1 levels (one byte
// each) and is not scanned.
func jsonDepth(b []byte, limit int) int {
	if len(b) <= limit {
		return -1
	}
	return jsonDepthScan(b, limit)
}

// jsonDepthScan is jsonDepth's scan.
func jsonDepthScan(b []byte, limit int) int {
	depth := 0
	inStr, esc := false, false
	for i, c := range b {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			depth++
			if depth > limit {
				return i
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return -1
}

// xmlDepth scans b once, without recursion, and returns the offset of the
// first start tag that opens element level limit+1, or -1. Comments,
// CDATA sections, processing instructions, declarations, quoted attribute
// values and self-closing tags are skipped. The scan does not validate: it
// over-counts rather than under-counts (an unclosed tag still counts), and
// the parser checks the document after.
//
// A body of at most 2×limit bytes is not scanned: every level the scan
// counts takes at least two bytes ("<>") before the next '<', so the start
// tag of level limit+1 is at an offset of at least 2×limit.
func xmlDepth(b []byte, limit int) int {
	if len(b) <= 2*limit {
		return -1
	}
	return xmlDepthScan(b, limit)
}

// xmlDepthScan is xmlDepth's scan.
func xmlDepthScan(b []byte, limit int) int {
	depth := 0
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			break
		}
		i += j
		rest := b[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			i = skipPast(b, i+4, "-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			i = skipPast(b, i+9, "]]>")
		case bytes.HasPrefix(rest, []byte("<?")):
			i = skipPast(b, i+2, "?>")
		case bytes.HasPrefix(rest, []byte("<!")):
			i = skipDecl(b, i+2)
		case bytes.HasPrefix(rest, []byte("</")):
			i, _ = skipTag(b, i+2)
			if depth > 0 {
				depth--
			}
		default:
			start := i
			end, _ := skipTag(b, i+1)
			i = end
			if depth+1 > limit {
				return start
			}
			if end < len(b) && end > start+1 && b[end-1] == '/' {
				continue // <a/> opens and closes a level
			}
			depth++
		}
	}
	return -1
}

// skipPast returns the index of the last byte of the first sep at or after
// from, or len(b)-1 when there is none.
func skipPast(b []byte, from int, sep string) int {
	if from > len(b) {
		return len(b) - 1
	}
	j := bytes.Index(b[from:], []byte(sep))
	if j < 0 {
		return len(b) - 1
	}
	return from + j + len(sep) - 1
}

// skipTag returns the index of the '>' ending the tag whose name starts at
// from, skipping quoted attribute values, or len(b) when there is none;
// attrs counts the tag's '=' outside quotes (its attributes).
func skipTag(b []byte, from int) (end int, attrs int64) {
	var quote byte
	for j := from; j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			attrs++
		case c == '>':
			return j, attrs
		}
	}
	return len(b), attrs
}

// skipDecl returns the index of the '>' ending a <!DOCTYPE ...> (or other
// <!...>) directive, read as encoding/xml (under xmlquery) reads one: the
// byte after "<!" is taken as it is, then quoted strings, nested <...>
// (an internal subset's declarations) and <!-- comments --> are skipped
// until a '>' outside them.
func skipDecl(b []byte, from int) int {
	var quote byte
	depth := 0
	for j := from + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<' && bytes.HasPrefix(b[j:], []byte("<!--")):
			k := bytes.Index(b[j+4:], []byte("--"))
			if k < 0 {
				return len(b)
			}
			j += 4 + k + 2 // the '>' after "--"
		case c == '<':
			depth++
		case c == '>':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return len(b)
}

// CheckDepth reports whether body, read as f (JSON or XML), nests deeper
// than limit levels (limit < 1: DefaultMaxDepth), scanning once without
// recursion and without parsing. It is for code that hands a response body
// to gjson or xmlquery itself, outside a Doc (which checks on its own).
// Other formats are not checked.
func CheckDepth(body []byte, f Format, limit int) error {
	if limit < 1 {
		limit = DefaultMaxDepth
	}
	body = trimBOM(body)
	switch f {
	case JSON:
		if off := jsonDepth(body, limit); off >= 0 {
			return depthError("JSON", limit, off)
		}
	case XML:
		if off := xmlDepth(body, limit); off >= 0 {
			return depthError("XML", limit, off)
		}
	}
	return nil
}

// The bytes one node and one attribute of xmlquery's tree hold: the
// structs, and an attribute's share of the slice it is appended to
// (which may have twice the room it uses).
const (
	xmlNodeBytes = int64(unsafe.Sizeof(xmlquery.Node{})) + 16
	xmlAttrBytes = 2 * int64(unsafe.Sizeof(xmlquery.Attr{}))
)

// XMLTreeSize bounds the bytes xmlquery's tree of the XML document b holds
// (its nodes, their attributes and the text they copy), counted from b's
// markup without parsing it, so that a caller can count them against a
// memory budget before it parses b. A tree costs 15 to 55 times its
// document's bytes: a node for every element, comment, instruction and
// run of text, however short.
func XMLTreeSize(b []byte) int64 {
	nodes, attrs := xmlCounts(b)
	return nodes*xmlNodeBytes + attrs*xmlAttrBytes + int64(len(b))
}

// xmlCounts counts what xmlquery makes a node of in b — the document, an
// XML declaration, elements, comments, CDATA sections, instructions,
// declarations and the runs of text between them — and the attributes of
// its elements (an '=' in a start tag, outside quotes; the declaration's
// version), at least as many as the parser makes.
func xmlCounts(b []byte) (nodes, attrs int64) {
	nodes, attrs = 2, 1 // the document, and the declaration (version=) xmlquery adds
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return nodes + 1, attrs // the text after the last tag
		}
		if j > 0 {
			nodes++ // the text before this tag
		}
		i += j
		rest := b[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			i, nodes = skipPast(b, i+4, "-->"), nodes+1
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			i, nodes = skipPast(b, i+9, "]]>"), nodes+1
		case bytes.HasPrefix(rest, []byte("<?")):
			i, nodes = skipPast(b, i+2, "?>"), nodes+1
		case bytes.HasPrefix(rest, []byte("<!")):
			i, nodes = skipDecl(b, i+2), nodes+1
		case bytes.HasPrefix(rest, []byte("</")):
			i, _ = skipTag(b, i+2)
		default:
			end, n := skipTag(b, i+1)
			i, nodes, attrs = end, nodes+1, attrs+n
		}
	}
	return nodes, attrs
}
