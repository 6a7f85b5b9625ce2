package source_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
)

const pagesKey = "SECRETKEY-5f2a9c"

// pagesYAML is a source of pages behind an api_key in the query, whose
// records each run one step on the same partner.
const pagesYAML = `version: 1
name: pages
settings:
  base_url: {}
  api_key: { secret: true }
auth: { type: api_key, in: query, name: api_key, value: "{{settings.api_key}}" }
source:
  request: { url: "{{settings.base_url}}/pages?p=%s" }
  records: { json: data }
  key: id
  paginate: %s
  max_pages: 30
steps:
  - name: s
    request: { method: POST, url: "{{settings.base_url}}/ok", body: { json: { id: "{{lead.id}}" } } }
`

// pagesPartner answers /pages with page (p: the query's p; one request at
// a time) and /ok with 200, counting the page requests.
type pagesPartner struct {
	mu    sync.Mutex
	pages []string // each page request's raw query
	srv   *httptest.Server
}

func newPagesPartner(t *testing.T, page func(p string, w http.ResponseWriter, r *http.Request)) *pagesPartner {
	pp := &pagesPartner{}
	pp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			w.Write([]byte(`{}`))
			return
		}
		pp.mu.Lock()
		pp.pages = append(pp.pages, r.URL.RawQuery)
		pp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		page(r.URL.Query().Get("p"), w, r)
	}))
	t.Cleanup(pp.srv.Close)
	return pp
}

func (pp *pagesPartner) requests() []string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return append([]string(nil), pp.pages...)
}

// syncPages runs one sync of pagesYAML against pp, its state in state:
// its first request's p is first, its pagination paginate.
func syncPages(t *testing.T, first, paginate string, pp *pagesPartner, state string) *source.Report {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pages.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(pagesYAML, first, paginate)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := engine.Load(file, engine.WithHTTPClient(pp.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": pp.srv.URL, "api_key": pagesKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	spec, err := source.Compile(plan)
	if err != nil {
		t.Fatal(err)
	}
	st, err := source.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := source.Sync(context.Background(), r, spec, st, source.Options{}, func(source.Record, *engine.Result) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestLinkCycleIsALoop: two pages that link to each other are a loop
// however the links are spelled — a changing #fragment (never sent), a
// relative or an absolute URL — found on the third page, not after
// max_pages.
func TestLinkCycleIsALoop(t *testing.T) {
	var requests atomic.Int32
	pp := newPagesPartner(t, func(p string, w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		link := "pages?p=1" // page 2 links back relative to /pages
		switch {
		case p == "1" && n == 1:
			link = "/pages?p=2#1"
		case p == "1":
			link = fmt.Sprintf("http://%s/pages?p=2#%d", r.Host, n) // absolute, another fragment
		}
		// records differ every time: only the links tell the cycle
		fmt.Fprintf(w, `{"data": [{"id": "r%d"}], "next": %q}`, n, link)
	})
	rep := syncPages(t, "1", "{ type: next_url, next: { json: next } }", pp, filepath.Join(t.TempDir(), "s.db"))
	if !errors.Is(rep.Err, source.ErrLoop) || len(pp.requests()) > 3 {
		t.Fatalf("ended %q (%v) after %d page requests, want a loop error within 3", rep.Ended, rep.Err, len(pp.requests()))
	}
}

// TestRecordCycleIsALoop: an API that cycles through three pages whatever
// the page number holds, on page 4, the records of page 1: a loop, not 30
// pages of the same records.
func TestRecordCycleIsALoop(t *testing.T) {
	pp := newPagesPartner(t, func(p string, w http.ResponseWriter, _ *http.Request) {
		var n int
		fmt.Sscan(p, &n)
		fmt.Fprintf(w, `{"data": [{"id": "r%d"}]}`, (n-1)%3)
	})
	rep := syncPages(t, "{{page.number}}", "{ type: page }", pp, filepath.Join(t.TempDir(), "s.db"))
	if !errors.Is(rep.Err, source.ErrLoop) || len(pp.requests()) != 4 || !strings.Contains(rep.Err.Error(), "page 4 holds the same records as page 1") {
		t.Fatalf("ended %q (%v) after %d page requests, want a loop error on page 4", rep.Ended, rep.Err, len(pp.requests()))
	}
}

// TestStateHoldsNoSecret: a next link holding the query key (as many
// APIs write it) is saved masked — the state file holds the key in no
// form — and a later sync resumes at it with the key (the auth's query
// parameter is written again).
func TestStateHoldsNoSecret(t *testing.T) {
	var refuse sync.Mutex
	refusing := true
	pp := newPagesPartner(t, func(p string, w http.ResponseWriter, _ *http.Request) {
		refuse.Lock()
		defer refuse.Unlock()
		switch {
		case p == "1":
			fmt.Fprintf(w, `{"data": [{"id": "a"}], "next": "/pages?p=2&api_key=%s"}`, pagesKey)
		case refusing:
			w.WriteHeader(http.StatusForbidden)
		default:
			w.Write([]byte(`{"data": [{"id": "b"}]}`))
		}
	})
	dir := t.TempDir()
	state := filepath.Join(dir, "s.db")
	paginate := "{ type: next_url, next: { json: next } }"
	if rep := syncPages(t, "1", paginate, pp, state); rep.Ended != "error" || rep.State.Resume == nil {
		t.Fatalf("page 2 refused: ended %q (%v)", rep.Ended, rep.Err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, form := range []string{pagesKey, base64.StdEncoding.EncodeToString([]byte(pagesKey)), fmt.Sprintf("%x", pagesKey)} {
			if strings.Contains(string(b), form) {
				t.Errorf("%s holds the key (%s)", filepath.Base(f), form)
			}
		}
	}
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	if rep := syncPages(t, "1", paginate, pp, state); rep.Ended != "complete" {
		t.Fatalf("resumed: ended %q (%v)", rep.Ended, rep.Err)
	}
	got := pp.requests()
	if last := got[len(got)-1]; !strings.HasPrefix(last, "p=2&") || strings.Count(last, "api_key=") != 1 || !strings.Contains(last, "api_key="+pagesKey) {
		t.Fatalf("the resumed page request %q should carry the key once", last)
	}
}
