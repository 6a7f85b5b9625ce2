package parse

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"testing"
)

// realJSONDepth is the nesting of a valid JSON text, by encoding/json's
// (iterative) tokenizer.
func realJSONDepth(b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	depth, most := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			most = max(most, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// realXMLDepth is the element nesting of a well-formed XML text, or -1.
func realXMLDepth(b []byte) int {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, most := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return most
		}
		if err != nil {
			return -1
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			most = max(most, depth)
		case xml.EndElement:
			depth--
		}
	}
}

// FuzzDepth: on valid JSON and well-formed XML the iterative scans refuse
// exactly the bodies nested deeper than the limit.
func FuzzDepth(f *testing.F) {
	for _, s := range []string{
		`[[1]]`, `{"a":{"b":[1,{"c":"[[[{"}]}}`, `"\"["`, `[]`, `{"a\\":[[]]}`,
		`<a><b x="/>"><c/></b></a>`, `<a><!-- <b> --><![CDATA[<c>]]><?p <d>?></a>`,
		`<!DOCTYPE a [<!ELEMENT a ANY>]><a><b></b></a>`, `<a b='>'><c></c></a>`, `<a/>`,
		`<><><>`, `<><><`, `<a><b><c>`, `[[[`, `[[`,
	} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		if limit < 1 || limit > 64 {
			return
		}
		// the short-body fast paths never change the answer
		if got, scan := jsonDepth(b, limit), jsonDepthScan(b, limit); got != scan {
			t.Fatalf("JSON %q limit %d: %d, scanned %d", b, limit, got, scan)
		}
		if got, scan := xmlDepth(b, limit), xmlDepthScan(b, limit); got != scan {
			t.Fatalf("XML %q limit %d: %d, scanned %d", b, limit, got, scan)
		}
		if json.Valid(b) {
			real := realJSONDepth(b)
			if got := jsonDepth(b, limit) >= 0; got != (real > limit) {
				t.Fatalf("JSON %q depth %d, limit %d: refused=%v", b, real, limit, got)
			}
		}
		if real := realXMLDepth(b); real >= 0 && bytes.Contains(b, []byte("<")) {
			if got := xmlDepth(b, limit) >= 0; got && real <= limit {
				t.Fatalf("XML %q depth %d, limit %d: refused", b, real, limit)
			} else if !got && real > limit {
				t.Fatalf("XML %q depth %d, limit %d: not refused", b, real, limit)
			}
		}
	})
}
