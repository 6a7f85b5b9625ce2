package history

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/jsonw"
)

// plainRecord is Record's fields and tags without its MarshalJSON: the
// reference encoding/json writes. Built from the real type, it follows
// every field added to it.
var plainRecord = func() reflect.Type {
	var fields []reflect.StructField
	for f := range reflect.TypeFor[Record]().Fields() {
		fields = append(fields, f)
	}
	return reflect.StructOf(fields)
}()

// referenceJSON is what encoding/json (HTML escaping off) writes for rec.
func referenceJSON(t testing.TB, rec *Record) []byte {
	t.Helper()
	want, err := jsonw.Marshal(reflect.ValueOf(rec).Elem().Convert(plainRecord).Interface())
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// texts are the strings a record's fields are drawn from: empty (omitted
// where the tag says so), plain, and ones every escaper must get right.
var texts = []string{"", "", "a", "bench-three-step", `say "hi"`, "<b>&</b>", "line\nbreak\t\x01", "bad \xff utf8", "\u2028", "日本"}

func randomRecord(r *rand.Rand) Record {
	s := func() string { return texts[r.IntN(len(texts))] }
	n := func() int { return []int{0, 0, 1, 200, 503, -1}[r.IntN(6)] }
	d := func() engine.Duration { return engine.Duration(r.Int64N(int64(time.Hour)) - int64(time.Second)) }
	tm := func() time.Time {
		if r.IntN(4) == 0 {
			return time.Time{}
		}
		zone := []*time.Location{time.UTC, time.FixedZone("", -5*3600), time.Local}[r.IntN(3)]
		return time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).In(zone)
	}
	h := func() http.Header {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return http.Header{}
		case 2:
			return http.Header{"X-Nil": nil}
		}
		return http.Header{"Content-Type": {"text/xml"}, "X-B": {s(), s()}, "A": {}}
	}
	rec := Record{ID: s(), Integration: s(), Source: s(), RequestID: s(), Batch: s(), Outcome: s(), Class: s(),
		Reason: s(), Step: s(), Accepted: tm(), Started: tm(), Finished: tm(), QueuedMS: d(), DurationMS: d()}
	if r.IntN(8) > 0 {
		rec.Steps = []Step{}
	}
	for range r.IntN(4) {
		st := Step{Name: s(), Outcome: s(), Class: s(), Reason: s(), Method: s(), URL: s(), Status: n(), Attempts: n(),
			DurationMS: d(), Group: s()}
		if r.IntN(3) == 0 {
			st.Tries = []Try{}
		}
		for range r.IntN(3) {
			try := Try{Attempt: n(), Fallback: r.IntN(2) == 0, Status: n(), Class: s(), Error: s(), Rule: s(), DurationMS: d()}
			if r.IntN(2) == 0 {
				try.Request = &Sent{Method: s(), URL: s(), Header: h(), Body: s()}
			}
			if r.IntN(2) == 0 {
				try.Response = &Answer{Status: n(), Header: h(), Body: s()}
			}
			st.Tries = append(st.Tries, try)
		}
		rec.Steps = append(rec.Steps, st)
	}
	return rec
}

// A record is written as encoding/json writes its fields, byte for byte,
// whatever it holds; json.Marshal (the cluster's log) writes it as it did
// without the method; and it reads back as it was.
func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		rec := randomRecord(r)
		want := referenceJSON(t, &rec)
		got, err := rec.AppendJSON([]byte("p"))
		if err != nil || !bytes.Equal(got, append([]byte("p"), want...)) {
			t.Fatalf("record %d: AppendJSON writes\n%s (%v)\nencoding/json writes\np%s", i, got, err, want)
		}
		html, _ := json.Marshal(reflect.ValueOf(&rec).Elem().Convert(plainRecord).Interface())
		if got, err := json.Marshal(&rec); err != nil || !bytes.Equal(got, html) {
			t.Fatalf("record %d: json.Marshal writes\n%s (%v)\nwithout MarshalJSON\n%s", i, got, err, html)
		}
	}
	bad := Record{Started: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if got, err := bad.AppendJSON([]byte("p")); err == nil || string(got) != "p" {
		t.Fatalf("a year encoding/json cannot write: %q, %v; want the buffer as it was and an error", got, err)
	}
}

func BenchmarkRecordJSON(b *testing.B) {
	rec := Record{ID: "0ujsszwN8NRY24YaXiTIE2", Integration: "bench-three-step", Source: SourceRun, RequestID: "0ujsszwN8NRY24YaXiTIDz",
		Outcome: "success", Started: time.Now(), Finished: time.Now(), DurationMS: engine.Duration(12 * time.Millisecond)}
	for _, n := range []string{"check", "validate", "accept"} {
		rec.Steps = append(rec.Steps, Step{Name: n, Outcome: "success", Method: "POST", URL: "http://127.0.0.1:18080/soap/leads",
			Status: 200, Attempts: 1, DurationMS: engine.Duration(3 * time.Millisecond), Tries: []Try{{Attempt: 1, Status: 200, DurationMS: 3e6}}})
	}
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = rec.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		plain := reflect.ValueOf(&rec).Elem().Convert(plainRecord).Interface()
		for b.Loop() {
			_, _ = json.Marshal(plain)
		}
	})
}
