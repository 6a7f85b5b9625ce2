package source

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

func TestNextLink(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{`<https://api.example/v1/leads?page=2>; rel="next"`, "https://api.example/v1/leads?page=2"},
		{`<https://a.example/?p=1>; rel="prev", <https://a.example/?p=3>; rel="next"`, "https://a.example/?p=3"},
		{`<https://a.example/?p=3>; title="x, y"; rel=next`, "https://a.example/?p=3"},
		{`<https://a.example/?p=3>; rel="last next"`, "https://a.example/?p=3"},
		{`<https://a.example/?p=9>; rel="last"`, ""},
		{``, ""},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("Link", c.header)
		}
		if got := nextLink(h); got != c.want {
			t.Errorf("%s: got %q, want %q", c.header, got, c.want)
		}
	}
}

func TestCursorOrderAndLookback(t *testing.T) {
	if compareCursor("9", "10") >= 0 || compareCursor(9.0, 10) >= 0 {
		t.Error("numbers compare as numbers")
	}
	if compareCursor("2026-01-01T10:00:00+02:00", "2026-01-01T09:00:00Z") >= 0 {
		t.Error("timestamps compare in time, whatever their zone")
	}
	if compareCursor("b", "a") <= 0 {
		t.Error("text compares as text")
	}
	for _, c := range []struct {
		v    any
		d    time.Duration
		want any
	}{
		{"2026-01-06T11:00:00.000Z", time.Hour, "2026-01-06T10:00:00.000Z"},
		{"2026-01-06T11:00:00Z", 90 * time.Minute, "2026-01-06T09:30:00Z"},
		{"1700000000", time.Minute, int64(1699999940)},
		{"abc", time.Hour, "abc"},
		{"2026-01-06T11:00:00Z", 0, "2026-01-06T11:00:00Z"},
	} {
		if got := lookBack(c.v, c.d); got != c.want {
			t.Errorf("lookBack(%v, %s) = %#v, want %#v", c.v, c.d, got, c.want)
		}
	}
}

func TestRecords(t *testing.T) {
	load := func(src string) *Spec {
		t.Helper()
		plan, err := engine.Parse("s.yaml", []byte("version: 1\nname: s\nsettings: { base_url: {} }\nsource:\n"+src+"steps:\n  - { name: s, request: { url: \"{{settings.base_url}}\" } }\n"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Compile(plan)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	js := load("  request: { url: \"{{settings.base_url}}\" }\n  records: { json: data.items }\n")
	recs, err := js.Records(200, nil, []byte(`{"data":{"items":[{"id":12345678901234567890,"a":{"b":1}},{"id":2}]}}`))
	if err != nil || len(recs) != 2 || recs[0]["id"].(interface{ String() string }).String() != "12345678901234567890" {
		t.Fatalf("%v %v", recs, err)
	}
	if recs, err := js.Records(200, nil, []byte(`{"data":{}}`)); err != nil || len(recs) != 0 {
		t.Errorf("missing path: %v %v", recs, err)
	}
	if _, err := js.Records(200, nil, []byte(`{"data":{"items":{"id":1}}}`)); err == nil || !strings.Contains(err.Error(), "not a list") {
		t.Errorf("object: %v", err)
	}
	if _, err := js.Records(200, nil, []byte(`{"data":{"items":[1]}}`)); err == nil || !strings.Contains(err.Error(), "must be a JSON object") {
		t.Errorf("number: %v", err)
	}
	root := load("  request: { url: \"{{settings.base_url}}\" }\n")
	if recs, err := root.Records(200, nil, []byte(`[{"id":1}]`)); err != nil || len(recs) != 1 {
		t.Errorf("root array: %v %v", recs, err)
	}
	xml := load("  request: { url: \"{{settings.base_url}}\" }\n  records: { xpath: //Lead }\n")
	recs, err = xml.Records(200, http.Header{"Content-Type": {"application/xml"}}, []byte(
		`<Leads><Lead id="7"><Email>a@b.example</Email><Tag>x</Tag><Tag>y</Tag><Addr><City>Austin</City></Addr></Lead><Lead id="8"/></Leads>`))
	if err != nil || len(recs) != 2 {
		t.Fatalf("%v %v", recs, err)
	}
	r := recs[0]
	if r["id"] != "7" || r["Email"] != "a@b.example" || len(r["Tag"].([]any)) != 2 || r["Addr"].(map[string]any)["City"] != "Austin" {
		t.Errorf("xml record %#v", r)
	}
}

func TestSourceValidation(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"  paginate: { type: offset }\n", "offset needs size"},
		{"  paginate: { type: cursor }\n", "cursor needs cursor"},
		{"  paginate: { type: next_url }\n", "next_url needs next"},
		{"  paginate: { type: page, cursor: { json: x } }\n", "cursor does not apply to type page"},
		{"  paginate: { type: cursor, cursor: { json: a, header: b } }\n", "exactly one of json, xpath or header"},
		{"  paginate: { type: link, size: 10 }\n", "size applies to page and offset"},
		{"  records: { json: a, xpath: b }\n", "exactly one of json or xpath"},
		{"  rate: fast\n", "rate: want N/s"},
		{"  rate: 0/s\n", "rate: want N/s"},
		{"  max_pages: -1\n", "max_pages must not be negative"},
		{"  incremental: { cursor_field: \"a b\" }\n", "is not a field name"},
		{"  when: lead.x == 1\n", "when does not apply to a source"},
		{"  stop_when: captured.x ==\n", "stop_when"},
	} {
		src := "version: 1\nname: s\nsettings: { base_url: {} }\nsource:\n  request: { url: \"{{settings.base_url}}\" }\n" + c.src +
			"steps:\n  - { name: s, request: { url: \"{{settings.base_url}}\" } }\n"
		plan, err := engine.Parse("s.yaml", []byte(src))
		if err == nil {
			_, err = Compile(plan)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", strings.TrimSpace(c.src), err, c.want)
		}
	}
	for _, ok := range []string{"5/s", "100/m", "2/h", "1/500ms", "500/15m"} {
		if _, _, err := steps.ParseRate(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestStoreDamaged: a damaged state file is refused with a message, not a
// crash; a locked one says so.
func TestStoreDamaged(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.db"
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(bad); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Errorf("damaged: %v", err)
	}
	good := dir + "/good.db"
	s, err := OpenStore(good)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := OpenStore(good); !errors.Is(err, ErrLocked) {
		t.Errorf("locked: %v", err)
	}
}

// TestRecordsOneAtATime: a page's records are checked as a whole (each an
// object) before any runs, then decoded one at a time; a record the
// decoder refuses comes with its JSON (kept for the retry list) and the
// records after it still come.
func TestRecordsOneAtATime(t *testing.T) {
	s := &Spec{recJSON: "r"}
	if _, err := s.pageRecords(200, nil, []byte(`{"r":[{"id":1},2]}`)); err == nil || !strings.Contains(err.Error(), "record 2 of records path \"r\": a record must be a JSON object, got 2") {
		t.Fatalf("a list with a number: %v", err)
	}
	// deeper than encoding/json reads (the page check stops far earlier:
	// this is the decoder's own limit)
	deep := `{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`
	p := &pageRecords{n: 3, list: gjson.Parse(`[{"id":1},` + deep + `,{"id":3}]`)}
	var got []string
	for m, err := range p.each {
		var bad *badRecord
		switch {
		case err == nil:
			got = append(got, fmt.Sprint(m["id"]))
		case errors.As(err, &bad) && bad.raw == deep:
			got = append(got, "bad")
		default:
			t.Fatalf("record error %v", err)
		}
	}
	if strings.Join(got, ",") != "1,bad,3" {
		t.Errorf("records %v", got)
	}
}

// BenchmarkDecodeRecord reads one record of a page as a lead
// (internal/leadjson, as every lead is read).
//
//	go test -run '^$' -bench DecodeRecord -benchmem ./source
func BenchmarkDecodeRecord(b *testing.B) {
	s := `{"id":12345,"email":"lead1@gmail.example","phone":"(512) 555-0001","tags":["a","b"],"score":0.5,"active":true}`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecordString(s); err != nil {
			b.Fatal(err)
		}
	}
}
