package cli

import (
	"bytes"
	"io"
	"testing"
)

// FuzzLeadReaders: whatever bytes a leads file holds, the NDJSON and CSV
// readers end (EOF or an error), never panic, and every row they give is a
// lead or an error, never both or neither.
func FuzzLeadReaders(f *testing.F) {
	for _, s := range []string{
		"{\"email\":\"a@b.co\"}\n{\"n\":12345678901234567890}\n",
		"[1,2]\n\n{bad\n",
		"\xef\xbb\xbfemail,age:int,ok:bool\na@b.co,42,yes\n\"x\ny\",1,no\n",
		"a,b\n\"unclosed,1\n",
		"a:json\n\"{\"\"k\"\":[1,{}]}\"\n",
		"a,a\n1,2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(next func() (item, error)) {
			for range 10000 {
				it, err := next()
				if err == io.EOF {
					return
				}
				if err != nil {
					return // a read error stops the input, as it should
				}
				if (it.lead == nil) == (it.err == nil) {
					t.Fatalf("row %d: lead %v, err %v", it.index, it.lead, it.err)
				}
			}
			t.Fatalf("reader did not end within 10000 rows of %d bytes", len(b))
		}
		check(newNDJSONSource(bytes.NewReader(b)).Next)
		if s, err := newCSVSource(bytes.NewReader(b)); err == nil {
			check(s.Next)
		}
	})
}
