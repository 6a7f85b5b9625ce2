package source

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/cond"
)

// stopSpec is a Spec whose stop_when is src.
func stopSpec(t *testing.T, src string) *Spec {
	t.Helper()
	prog, err := cond.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return &Spec{stop: prog, stopResp: true, stopRead: stopBodyPaths(src)}
}

// TestStopWhenBodyAsDecoded: stop_when reads the same values from the
// partial body it is given as from the whole body decoded, whatever the
// way it reads them: a value and a key under it, len of an object, an
// index, a computed key, a repeated key, a body that is a list or not
// JSON.
func TestStopWhenBodyAsDecoded(t *testing.T) {
	bodies := []string{
		`{"meta":{"more":false,"n":2},"data":{"items":[{"id":1},{"id":2}]},"a":1,"a":2,"k":"meta"}`,
		`{"meta":{"more":true},"data":{"items":[]}}`,
		`{"meta":null,"data":"x"}`,
		`{"meta":{"more.x":true,"@x":1}}`,
		`[{"id":1}]`,
		`not json`,
		``,
	}
	conds := []string{
		`response.body.meta.more == false`,
		`len(response.body.meta) == 2 && response.body.meta.more == false`,
		`response.body.meta != nil && response.body.meta.n > 1`,
		`len(response.body.data.items) == 2`,
		`response.body.data.items[0].id == 1`,
		`response.body["meta"]["more"] == false`,
		`response.body[response.body.k] != nil`,
		`len(response.body) == 5`,
		`response.body.a == 2`,
		`response.body.missing.x == nil`,
		`response.body.meta["more.x"] == true && response.body.meta["@x"] == 1`,
		`response.body == "not json"`,
		`any(response.body.data.items, .id == 2)`,
		`response.body.meta.more.deeper == true`,
	}
	for _, src := range conds {
		s := stopSpec(t, src)
		for _, body := range bodies {
			pg := &engine.Page{Status: 200, Header: http.Header{}, Body: []byte(body)}
			got, gotErr := s.stopHolds(pg, map[string]any{}, map[string]any{})
			full := map[string]any{"status": 200, "headers": map[string]any{}, "body": body}
			if d, err := decodeAny([]byte(body)); err == nil {
				full["body"] = d
			}
			want, wantErr := s.stop.Eval(map[string]any{"captured": map[string]any{}, "page": map[string]any{}, "state": map[string]any{}, "response": full})
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s on %s: %v (%v), decoded whole: %v (%v)", src, body, got, gotErr, want, wantErr)
			}
		}
	}
}

// TestStopWhenBodyAllocation: stop_when reading the meta of a large page
// allocates a fraction of the page, not a map per record (issue 26).
func TestStopWhenBodyAllocation(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"meta":{"more":false},"records":[`)
	for i := 1; i <= 50_000; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"v":"x"}`, i)
	}
	b.WriteString(`]}`)
	body := []byte(b.String())
	s := stopSpec(t, `response.body.meta.more == false`)
	pg := &engine.Page{Status: 200, Header: http.Header{}, Body: body}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done, err := s.stopHolds(pg, map[string]any{}, map[string]any{})
	runtime.ReadMemStats(&after)
	if err != nil || !done {
		t.Fatalf("stop_when: %v, %v", done, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("page %d bytes: stop_when allocated %d bytes", len(body), alloc)
	if alloc > uint64(2*len(body)) {
		t.Errorf("stop_when over a page of %d bytes allocated %d bytes (%.1fx), want at most 2x", len(body), alloc, float64(alloc)/float64(len(body)))
	}
}
