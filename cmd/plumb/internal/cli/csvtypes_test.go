package cli

import (
	"strings"
	"testing"
)

// TestCSVTypedColumns (issue 14.5): name:type headers give typed values;
// an empty typed cell is absent; a bad cell is an error row naming the
// column; untyped columns stay text.
func TestCSVTypedColumns(t *testing.T) {
	src := "email,verified:bool,age:int,score:number,tags:json,zip:string\n" +
		"a@b.co,yes,42,4.5,\"[\"\"x\"\"]\",01234\n" +
		"c@d.co,,,,,\n" +
		"e@f.co,maybe,1,1,1,1\n"
	s, err := newCSVSource(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	it, err := s.Next()
	if err != nil || it.err != nil {
		t.Fatal(err, it.err)
	}
	l := it.lead
	if l["verified"] != true || l["age"] != 42.0 || l["score"] != 4.5 || l["zip"] != "01234" || l["email"] != "a@b.co" {
		t.Fatalf("typed lead %#v", l)
	}
	if tags, ok := l["tags"].([]any); !ok || len(tags) != 1 || tags[0] != "x" {
		t.Fatalf("json cell %#v", l["tags"])
	}
	it, _ = s.Next()
	if _, has := it.lead["verified"]; has || it.lead["zip"] != "" {
		t.Fatalf("empty typed cells: %#v", it.lead)
	}
	it, _ = s.Next()
	if it.err == nil || !strings.Contains(it.err.Error(), "line 4: column verified: toBool") {
		t.Fatalf("bad cell: %v", it.err)
	}
	if _, err := newCSVSource(strings.NewReader("a:date\n1\n")); err == nil || !strings.Contains(err.Error(), `unknown type "date"`) {
		t.Fatalf("unknown type: %v", err)
	}
}
