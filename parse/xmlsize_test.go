package parse

import (
	"bytes"
	"strings"
	"testing"

	"github.com/antchfx/xmlquery"
)

// TestXMLTreeSizeCountsWhatTheParserMakes: for documents of every shape
// that costs a node (elements, attributes, runs of text and whitespace,
// comments, CDATA, instructions, namespaces, entities, quoted '>' and '='),
// the markup count is at least the nodes and attributes of the tree
// xmlquery builds, so XMLTreeSize bounds that tree before it exists.
func TestXMLTreeSizeCountsWhatTheParserMakes(t *testing.T) {
	for _, doc := range []string{
		"<r>" + strings.Repeat("<a/>", 500) + "</r>",
		"<r>" + strings.Repeat("<a/>x", 500) + "</r>",
		"<r>" + strings.Repeat("<a/> \n", 500) + "</r>",
		"<r>" + strings.Repeat(`<a b="1" c='2' d="x=y>z"/>`, 300) + "</r>",
		"<r>" + strings.Repeat("<a>x</a><!-- c --><![CDATA[d]]><?pi x?>&amp;", 200) + "</r>",
		`<?xml version="1.0"?><s:r xmlns:s="urn:s" xmlns="urn:d">` + strings.Repeat("<s:a s:k='v'>t</s:a>", 300) + "</s:r>",
		`<Envelope><Body><Resp><Status>OK</Status><Score>85</Score></Resp></Body></Envelope>`,
		"<r>text after</r> trailing",
	} {
		root, err := xmlquery.Parse(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("%.40s…: %v", doc, err)
		}
		var nodes, attrs int64
		var walk func(n *xmlquery.Node)
		walk = func(n *xmlquery.Node) {
			nodes++
			attrs += int64(len(n.Attr))
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(root)
		gotNodes, gotAttrs := xmlCounts([]byte(doc))
		if gotNodes < nodes || gotAttrs < attrs {
			t.Errorf("%.40s…: counted %d nodes and %d attributes, the tree has %d and %d", doc, gotNodes, gotAttrs, nodes, attrs)
		}
		if want := nodes*xmlNodeBytes + attrs*xmlAttrBytes + int64(len(doc)); XMLTreeSize([]byte(doc)) < want {
			t.Errorf("%.40s…: XMLTreeSize %d, less than the tree's %d", doc, XMLTreeSize([]byte(doc)), want)
		}
	}
	if n, a := xmlCounts(bytes.Repeat([]byte("<a/>"), 10)); n != 12 || a != 1 {
		t.Errorf("ten empty elements: %d nodes (want 12 with the document and its declaration), %d attributes (want 1)", n, a)
	}
}
