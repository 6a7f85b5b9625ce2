package cli

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
)

// mainOut runs plumb with args and returns its exit code, stdout and
// stderr.
func mainOut(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Main(args, strings.NewReader(""), &stdout, &stderr, nil)
	return code, stdout.String(), stderr.String()
}

// TestCaptureNoteInTryAndRun (issue 31): a capture whose path matches
// nothing is null, and plumb try and plumb run say why.
func TestCaptureNoteInTryAndRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": {"status": "ok"}, "meta": {"page": 1}}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "x.yaml")
	lead := filepath.Join(dir, "lead.json")
	os.WriteFile(file, []byte("version: 1\nname: x\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/s\" }\n    capture: { status: { json: result.status } }\n"), 0o644)
	os.WriteFile(lead, []byte(`{}`), 0o644)
	note := "note: `status`: path `result.status` not found in the response (keys: data, meta)\n"
	for _, cmd := range []string{"try", "run"} {
		code, out, errs := mainOut(cmd, "--set", "base_url="+srv.URL, "--lead", lead, file)
		if code != ExitOK || !strings.Contains(out, note) || !strings.Contains(out, "status=null") {
			t.Errorf("%s: exit %d\n%s%s", cmd, code, out, errs)
		}
	}
}

// TestValidateSourcePolicy (issue 31): validate -v prints the source's
// policy — tries, pages, rate — as it prints each step's.
func TestValidateSourcePolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(file, []byte(`version: 1
name: s
settings: { base_url: {} }
source:
  request: { url: "{{settings.base_url}}/leads?page={{page.number}}" }
  timeout: 3s
  max_attempts: 2
  rate: 5/s
  max_pages: 40
  paginate: { type: page, size: 100 }
  records: { json: data }
steps:
  - name: a
    request: { url: "{{settings.base_url}}/x" }
`), 0o644)
	code, out, errs := mainOut("validate", "-v", file)
	want := "  source: timeout 3s per try, at most 2 tries\n    pages: page, 100 a page, at most 40 pages a sync; rate: at most 5/s\n    on 408, 429, 5xx"
	if code != ExitOK || !strings.Contains(out, want) || !strings.Contains(out, "\n  step a: timeout 30s per try\n") {
		t.Fatalf("exit %d\n%s%s\nwant:\n%s", code, out, errs, want)
	}
}

// TestMaxErrorsCountsInARow: only leads in a row that could not reach the
// partner count; any other result starts the count again.
func TestMaxErrorsCountsInARow(t *testing.T) {
	s := &stopper{max: 3}
	emit := s.watch(func(item, *engine.Result) error { return nil })
	res := func(o engine.Outcome, c engine.Class) *engine.Result { return &engine.Result{Outcome: o, Class: c} }
	for _, r := range []*engine.Result{
		res(engine.Error, engine.ClassConnection), res(engine.Error, engine.ClassTimeout),
		res(engine.Failure, ""), // the partner answered
		res(engine.Error, engine.ClassConnection), res(engine.Error, engine.ClassStatus),
		res(engine.Error, engine.ClassTLS), res(engine.Error, engine.ClassBreaker),
	} {
		emit(item{}, r)
	}
	if s.stopped() {
		t.Fatal("stopped before 3 in a row")
	}
	emit(item{}, res(engine.Error, engine.ClassConnection))
	if !s.stopped() || !strings.Contains(s.err().Error(), "not run: stopped after 3 leads in a row") {
		t.Fatalf("not stopped after 3 in a row: %v", s.err())
	}
	emit(item{notRun: errors.New("x")}, res(engine.Error, engine.ClassCanceled))
	if s.notRun != 1 {
		t.Fatalf("not run: %d", s.notRun)
	}
	var none *stopper
	if none.stopped() {
		t.Fatal("a nil stopper stopped")
	}
}

// TestProgressNeverCollides (issue 31): every write through the guard —
// results when the output buffer fills, warnings, logs — erases the
// progress line first; the line shows total, percent and ETA when the
// input's size is known.
func TestProgressNeverCollides(t *testing.T) {
	var term bytes.Buffer
	p := newProgress(&term, true)
	p.draw("10 leads")
	out := p.guard(&term)
	out.Write([]byte("lead 11: success\n"))
	out.Write([]byte("lead 12: success\n")) // nothing left to erase
	want := "\r\033[K10 leads" + "\r\033[K" + "lead 11: success\n" + "lead 12: success\n"
	if term.String() != want {
		t.Fatalf("terminal got %q\nwant %q", term.String(), want)
	}
	s := newSummary()
	s.total, s.offset = 50, 250
	s.counts[engine.Success] = 50
	p.size = 1000
	if got := p.line(s, 10*time.Second); !strings.HasPrefix(got, "50/~200 leads (25%, ETA 30s): 50 success") {
		t.Fatalf("line %q", got)
	}
	p.size = 0
	if got := p.line(s, 10*time.Second); !strings.HasPrefix(got, "50 leads: 50 success") {
		t.Fatalf("line without a size %q", got)
	}
	if off := newProgress(&term, false); off.guard(&term) != &term {
		t.Fatal("without a progress line the writer is not wrapped")
	}
}

// TestLeadOffsets: leads read from a file carry how much of it was read,
// NDJSON and CSV; stdin leads do not.
func TestLeadOffsets(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"l.ndjson": "{\"a\":1}\n\n{\"a\":2}\n", "l.csv": "a\n1\n2\n"} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		src, done, err := openLeads(&stdio{}, path, false, "auto")
		if err != nil {
			t.Fatal(err)
		}
		first, _ := src.Next()
		second, _ := src.Next()
		done()
		if inputSize(src) != int64(len(body)) || first.offset <= 0 || second.offset != int64(len(body)) || first.offset >= second.offset {
			t.Errorf("%s: size %d, offsets %d %d", name, inputSize(src), first.offset, second.offset)
		}
	}
	src, _, _ := openLeads(&stdio{stdin: strings.NewReader("{}\n")}, "-", false, "auto")
	if it, _ := src.Next(); it.offset != 0 || inputSize(src) != 0 {
		t.Errorf("stdin: offset %d size %d", it.offset, inputSize(src))
	}
}

// TestNearest: did-you-mean suggests slips, not unrelated names.
func TestNearest(t *testing.T) {
	names := []string{"lead", "leads", "settings", "concurrency", "max-errors"}
	for in, want := range map[string]string{"leed": "lead", "setings": "settings", "concurency": "concurrency",
		"max-error": "max-errors", "lesd": "lead", "nope": "", "xyz": "", "conc": "concurrency"} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMaxErrorsStartsNoLeadAfterTheStop: at --concurrency 1 no lead starts
// once the leads before it made the run stop: with --max-errors 1 against
// a partner that drops every connection, the partner sees lead 1 only, and
// leads 2 and 3 are reported as not run.
func TestMaxErrorsStartsNoLeadAfterTheStop(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Lead"))
		mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "x.yaml")
	leads := filepath.Join(dir, "leads.ndjson")
	os.WriteFile(file, []byte("version: 1\nname: x\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    max_attempts: 1\n    request: { url: \"{{settings.base_url}}/s\", headers: { X-Lead: \"{{lead.n}}\" } }\n"), 0o644)
	os.WriteFile(leads, []byte("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), 0o644)
	type ran struct {
		code      int
		out, errs string
	}
	end := make(chan ran, 1)
	go func() {
		code, out, errs := mainOut("run", "--max-errors", "1", "--concurrency", "1", "--output", "ndjson", "--set", "base_url="+srv.URL, "--leads", leads, file)
		end <- ran{code, out, errs}
	}()
	var r ran
	select {
	case r = <-end:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not end in 10s")
	}
	code, out, errs := r.code, r.out, r.errs
	mu.Lock()
	defer mu.Unlock()
	if code != ExitLeadError || strings.Join(seen, ",") != "1" || strings.Count(out, `"class":"canceled"`) != 2 ||
		!strings.Contains(errs, "2 leads after them not run") {
		t.Fatalf("exit %d, partner saw leads %v, want 1 only\n%s%s", code, seen, out, errs)
	}
}
