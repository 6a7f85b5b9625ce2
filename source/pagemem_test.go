package source_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
)

// bigPageIntegration reads one page of records (no pagination); its one
// step is skipped for every record, so the records cost what the sync
// itself holds for them and nothing is sent.
const bigPageIntegration = `version: 1
name: bigpage
settings: { base_url: {} }
source:
  request: { url: "{{settings.base_url}}/records" }
  records: { json: data.records }%s
  key: id
steps:
  - name: never
    when: lead.id < 0
    request: { url: "{{settings.base_url}}/never" }
`

// bigPage is a JSON page of n small records (about 20 bytes each, as in
// the page of issue 26: 450,000 records in 9.3 MiB).
func bigPage(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"data":{"meta":{"more":false},"records":[`)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"v":"x"}`, i)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// liveHeap is the heap in use after a collection: what is held, not
// what was allocated on the way.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPageMemoryBoundedByPageSize: a sync of one large page of small
// records holds at most a few times the page's bytes, whatever the number
// of records (issue 26: 450,000 records in 9.3 MiB took 573 MB). The live
// heap is sampled (after a collection) when the page is read and every
// 1,000 results: counted, not timed.
func TestPageMemoryBoundedByPageSize(t *testing.T) {
	const records = 60_000
	body := bigPage(records)
	for _, c := range []struct{ name, extra string }{
		{"one page", ""},
		{"paginated", "\n  paginate: { type: page, size: 60000 }\n  stop_when: response.status == 200"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			dir := t.TempDir()
			file := filepath.Join(dir, "bigpage.yaml")
			if err := os.WriteFile(file, []byte(fmt.Sprintf(bigPageIntegration, c.extra)), 0o644); err != nil {
				t.Fatal(err)
			}
			plan, err := engine.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": srv.URL}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			spec, err := source.Compile(plan)
			if err != nil {
				t.Fatal(err)
			}
			st, err := source.OpenStore(filepath.Join(dir, "sync.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			base := liveHeap()
			var peak uint64
			sample := func() {
				if h := liveHeap(); h > base && h-base > peak {
					peak = h - base
				}
			}
			n := 0
			rep, err := source.Sync(context.Background(), r, spec, st, source.Options{Concurrency: 1, OnPage: func(source.PageInfo) { sample() }},
				func(_ source.Record, res *engine.Result) error {
					if n++; n%1000 == 0 {
						sample()
					}
					return nil
				})
			if err != nil || rep.Ended != "complete" || rep.Records != records {
				t.Fatalf("sync: %v, %+v", err, rep)
			}
			limit := uint64(8 * len(body))
			t.Logf("page %d bytes, %d records: peak live heap %d bytes (%.1fx the page)", len(body), records, peak, float64(peak)/float64(len(body)))
			if peak > limit {
				t.Errorf("a page of %d bytes held up to %d bytes (%.1fx), want at most 8x the page", len(body), peak, float64(peak)/float64(len(body)))
			}
		})
	}
}
