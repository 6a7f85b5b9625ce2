package parse

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Issue 13: 10 MiB of "[[[[" cost about 1 GB and could overflow the stack.
// The nesting limit refuses such bodies before any parser sees them.
func TestDeepNestingRefusedBeforeParsing(t *testing.T) {
	const size = 10 << 20
	bodies := []struct {
		format Format
		body   []byte
	}{
		{JSON, bytes.Repeat([]byte("["), size)},
		{JSON, bytes.Repeat([]byte(`{"a":`), size/5)},
		{XML, bytes.Repeat([]byte("<a>"), size/3)},
		{XML, bytes.Repeat([]byte(`<a x="1">`), size/9)},
	}
	for _, b := range bodies {
		var err error
		n := allocated(func() {
			d := NewDoc(Response{Status: 200, Body: b.body}, b.format)
			ex, cerr := Compile(Spec{JSON: "a"}, nil)
			if b.format == XML {
				ex, cerr = Compile(Spec{XPath: "//a"}, nil)
			}
			if cerr != nil {
				t.Fatal(cerr)
			}
			_, _, err = ex.Extract(d)
			_, _ = d.Value()
		})
		if err == nil || !strings.Contains(err.Error(), "deeper than 512 levels") {
			t.Errorf("%s body %q...: error %v, want one naming the limit", b.format, b.body[:12], err)
		}
		if n > 64<<20 {
			t.Errorf("%s body %q...: allocated %d MiB", b.format, b.body[:12], n>>20)
		}
	}
}

func TestDepthLimitBoundary(t *testing.T) {
	nestJSON := func(n int) []byte { return []byte(strings.Repeat("[", n) + "1" + strings.Repeat("]", n)) }
	nestXML := func(n int) []byte { return []byte(strings.Repeat("<a>", n) + "1" + strings.Repeat("</a>", n)) }
	for _, tt := range []struct {
		f    Format
		body []byte
		opts []DocOption
		ok   bool
	}{
		{JSON, nestJSON(512), nil, true},
		{JSON, nestJSON(513), nil, false},
		{JSON, nestJSON(513), []DocOption{MaxDepth(600)}, true},
		{JSON, nestJSON(3), []DocOption{MaxDepth(2)}, false},
		{JSON, []byte(`{"a":"` + strings.Repeat("[{", 1000) + `","b":"\"[[["}`), nil, true},
		{XML, nestXML(512), nil, true},
		{XML, nestXML(513), nil, false},
		{XML, nestXML(513), []DocOption{MaxDepth(600)}, true},
		{XML, []byte(`<r>` + strings.Repeat(`<b/><c x="a/" y='>'/><d z='/'></d><!-- <a><a> --><![CDATA[<a><a>]]><?pi <a>?>`, 1000) + `</r>`), []DocOption{MaxDepth(2)}, true},
		{XML, []byte(`<!DOCTYPE r [<!ENTITY e "<a>">]><r><x>1</x></r>`), []DocOption{MaxDepth(2)}, true},
		{XML, []byte(`<r><x><y>1</y></x></r>`), []DocOption{MaxDepth(2)}, false},
	} {
		d := NewDoc(Response{Body: tt.body}, tt.f, tt.opts...)
		var err error
		if tt.f == JSON {
			err = d.JSONValid()
		} else {
			_, err = d.XMLRoot()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s %.40q (opts %d): err = %v, want ok=%v", tt.f, tt.body, len(tt.opts), err, tt.ok)
		}
	}
}

func TestCheckDepth(t *testing.T) {
	deep := []byte(strings.Repeat("[", 600))
	if err := CheckDepth(deep, JSON, 0); err == nil || !strings.Contains(err.Error(), "deeper than 512 levels") {
		t.Errorf("CheckDepth JSON = %v", err)
	}
	if err := CheckDepth(deep, JSON, 1000); err != nil {
		t.Errorf("CheckDepth JSON limit 1000 = %v", err)
	}
	if err := CheckDepth([]byte(strings.Repeat("<a>", 600)), XML, 0); err == nil {
		t.Error("CheckDepth XML accepted 600 levels")
	}
	if err := CheckDepth(deep, Text, 0); err != nil {
		t.Errorf("CheckDepth Text = %v", err)
	}
}
