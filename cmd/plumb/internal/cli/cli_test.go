package cli

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// examplesDir is the repository's examples directory.
var examplesDir = filepath.Join("..", "..", "..", "..", "examples")

// lineWriter counts the lines written to it and how many match each
// pattern, holding only a partial line in memory.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	lines   int
	match   map[string]int
	res     map[string]*regexp.Regexp
}

func newLineWriter(patterns ...string) *lineWriter {
	w := &lineWriter{match: map[string]int{}, res: map[string]*regexp.Regexp{}}
	for _, p := range patterns {
		w.res[p] = regexp.MustCompile(p)
	}
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			return n, nil
		}
		line := append(w.partial, p[:i]...)
		w.lines++
		for name, re := range w.res {
			if re.Match(line) {
				w.match[name]++
			}
		}
		w.partial, p = line[:0], p[i+1:]
	}
}

// TestStreamManyLeads runs 200k NDJSON leads with concurrency 8 and checks
// that every line got exactly one result, in input order, malformed ones
// included. Most leads are skipped by the example's when: so the test
// exercises the pipeline rather than the loopback network; one in a
// thousand makes a real request to the sandbox.
func TestStreamManyLeads(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	path := filepath.Join(t.TempDir(), "leads.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	malformed, requests := 0, 0
	for i := 1; i <= n; i++ {
		switch {
		case i%50_000 == 0:
			malformed++
			fmt.Fprintf(bw, "{\"email\": %d,\n", i)
		case i%1000 == 0:
			requests++
			fmt.Fprintf(bw, "{\"email\": \"lead%d@mail.example\", \"phone\": \"5125550142\", \"ip_address\": \"192.0.2.1\", \"i\": %d}\n", i, i)
		default:
			fmt.Fprintf(bw, "{\"email\": \"\", \"i\": %d}\n", i)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out := newLineWriter(`"outcome":"success"`, `"outcome":"skip"`, `"outcome":"error"`)
	var stderr bytes.Buffer
	code := Main([]string{"run", "--sandbox", "--concurrency", "8", "--output", "ndjson",
		"--settings", filepath.Join(examplesDir, "blacklist", "settings.yaml"),
		"--leads", path, filepath.Join(examplesDir, "blacklist", "integration.yaml")},
		strings.NewReader(""), out, &stderr, nil)
	if code != ExitLeadError {
		t.Errorf("exit code %d, want %d (malformed rows are errors)\n%s", code, ExitLeadError, stderr.String())
	}
	if out.lines != n {
		t.Errorf("%d results, want %d", out.lines, n)
	}
	if got := out.match[`"outcome":"error"`]; got != malformed {
		t.Errorf("%d errors, want %d", got, malformed)
	}
	if got := out.match[`"outcome":"success"`]; got != requests {
		t.Errorf("%d successes, want %d", got, requests)
	}
	if got, want := out.match[`"outcome":"skip"`], n-malformed-requests; got != want {
		t.Errorf("%d skips, want %d", got, want)
	}
	want := fmt.Sprintf("summary: %d leads in", n)
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
}

// TestOrderedOutput checks results come out in input order although later
// leads finish first.
func TestOrderedOutput(t *testing.T) {
	var in strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&in, "{\"email\": \"l%d@mail.example\", \"phone\": \"5125550142\", \"ip_address\": \"192.0.2.1\"}\n", i)
	}
	var out, stderr bytes.Buffer
	code := Main([]string{"run", "--sandbox", "--concurrency", "16", "--output", "ndjson", "--leads", "-",
		"--settings", filepath.Join(examplesDir, "blacklist", "settings.yaml"),
		filepath.Join(examplesDir, "blacklist", "integration.yaml")},
		strings.NewReader(in.String()), &out, &stderr, nil)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		i++
		prefix := fmt.Sprintf(`{"index":%d,"line":%d,"outcome":"success"`, i, i)
		if !strings.HasPrefix(sc.Text(), prefix) {
			t.Fatalf("result %d: %.80s, want prefix %s", i, sc.Text(), prefix)
		}
	}
	if i != 200 {
		t.Errorf("%d results, want 200", i)
	}
}

func TestNDJSONSource(t *testing.T) {
	long := strings.Repeat("x", maxLeadLine+10)
	in := "{\"a\":1}\n\n  \r\n{\"b\":\"" + long + "\"}\n[1]\n{\"c\":2}\nnot json\n{\"d\":3}"
	src := newNDJSONSource(strings.NewReader(in))
	type row struct {
		index, line int
		err         string
		keys        string
	}
	var got []row
	for {
		it, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r := row{index: it.index, line: it.line}
		if it.err != nil {
			r.err = it.err.Error()
		}
		for k := range it.lead {
			r.keys += k
		}
		got = append(got, r)
	}
	want := []row{
		{1, 1, "", "a"},
		{2, 4, fmt.Sprintf("line 4: longer than %d bytes", maxLeadLine), ""},
		{3, 5, "line 5: a lead must be a JSON object, got an array", ""},
		{4, 6, "", "c"},
		{5, 7, "line 7: invalid JSON: invalid character 'o' in literal null (expecting 'u')", ""},
		{6, 8, "", "d"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestCSVSource(t *testing.T) {
	in := "\ufeffemail, source.id ,source.name\na@x,1,web\n\nb@x,2\n\"c\"@x,3,web\nd@x,,\n"
	src, err := newCSVSource(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		it, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d@%d %v %v", it.index, it.line, it.lead, it.err))
	}
	want := []string{
		"1@2 map[email:a@x source:map[id:1 name:web]] <nil>",
		"2@4 map[] line 4: 2 fields, the header has 3",
		`3@5 map[] line 5: invalid CSV: extraneous or missing " in quoted-field`,
		"4@6 map[email:d@x source:map[id: name:]] <nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, bad := range []string{"", "a,a\n", "a,a.b\n", "a,,b\n", "a..b\n"} {
		if _, err := newCSVSource(strings.NewReader(bad)); err == nil {
			t.Errorf("header %q: no error", bad)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	s := &stdio{stdout: io.Discard, stderr: io.Discard}
	for _, tc := range []struct {
		args []string
		pos  string
		lead string
		sets string
	}{
		{[]string{"x.yaml", "--lead", "l.json"}, "[x.yaml]", "l.json", ""},
		{[]string{"--lead=l.json", "x.yaml", "--set", "a=1", "y", "--set=b=2"}, "[x.yaml y]", "l.json", "a=1,b=2"},
		{[]string{"--lead", "l.json", "--", "--x.yaml", "-"}, "[--x.yaml -]", "l.json", ""},
		{[]string{"-", "--lead", "-"}, "[-]", "-", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		lead := fs.String("lead", "", "")
		var sets setFlags
		fs.Var(&sets, "set", "")
		pos, err := parseArgs(s, fs, tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if fmt.Sprint(pos) != tc.pos || *lead != tc.lead || sets.String() != tc.sets {
			t.Errorf("%v: pos %v lead %q sets %q", tc.args, pos, *lead, sets.String())
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseArgs(s, fs, []string{"x", "-h"}); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
	if _, err := parseArgs(s, fs, []string{"x", "--bogus"}); err == nil || errors.Is(err, errHelp) {
		t.Errorf("--bogus: %v", err)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.021 {
			t.Errorf("p%.0f = %v, want %v within 2%%", tc.q*100, got, tc.want)
		}
	}
	var tiny histogram
	tiny.add(0)
	if got := tiny.quantile(0.99); got != time.Microsecond {
		t.Errorf("zero duration: p99 = %v", got)
	}
}
