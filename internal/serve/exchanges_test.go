package serve

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/history"
)

// TestHistoryKeepsExchanges: an integration's history.exchanges decides
// which leads keep their tries' requests and responses in the lead
// history — none by default, those that did not succeed with failed, all
// with all — masked (the secret header and its echo in the body never
// appear) and cut to history.MaxExchangeBody.
func TestHistoryKeepsExchanges(t *testing.T) {
	t.Parallel()
	const secret = "k3y-0f-the-partn3r-7781"
	big := strings.Repeat("x", history.MaxExchangeBody+500)
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.RawQuery, "reject") {
			w.WriteHeader(422)
			fmt.Fprintf(w, `{"error":"no","echo":%q}`, r.Header.Get("X-Key"))
			return
		}
		fmt.Fprintf(w, `{"ok":true,"pad":%q}`, big)
	}))
	defer partner.Close()
	dir := t.TempDir()
	for name, keep := range map[string]string{"none": "", "failed": "history: { exchanges: failed }\n", "all": "history: { exchanges: all }\n"} {
		src := "version: 1\nname: " + name + "\n" + keep +
			"settings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: send\n" +
			"    request: { method: POST, url: \"{{settings.base_url}}/x?{{lead.kind}}\", headers: { X-Key: \"{{settings.key}}\" }, body: { json: { key: \"{{settings.key}}\", kind: \"{{lead.kind}}\" } } }\n" +
			"    max_attempts: 1\n"
		must(t, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o600))
		must(t, os.WriteFile(filepath.Join(dir, name+".settings.yaml"), []byte("base_url: "+partner.URL+"\nkey: "+secret+"\n"), 0o600))
	}
	s := testServer(t, Config{Dir: dir})
	c := client{t: t, base: "http://" + s.Addr()}
	for _, name := range []string{"none", "failed", "all"} {
		for _, kind := range []string{"accept", "reject"} {
			code, b := c.do("POST", "/v1/integrations/"+name+"/run", "application/json", []byte(`{"kind":"`+kind+`"}`))
			if code != 200 && code != 422 {
				t.Fatalf("%s %s: %d %s", name, kind, code, b)
			}
		}
	}
	s.hist.Flush()
	code, raw := c.do("GET", "/v1/leads?limit=100", "", nil)
	if code != 200 {
		t.Fatalf("GET /v1/leads: %d %s", code, raw)
	}
	if strings.Contains(string(raw), secret) {
		t.Fatalf("the secret is in the history: %s", raw)
	}
	kept := map[string]bool{}
	for _, rec := range decode[history.Page](t, raw).Records {
		try := rec.Steps[0].Tries[0]
		key := rec.Integration + " " + rec.Outcome
		kept[key] = try.Request != nil
		if try.Request == nil {
			continue
		}
		if try.Response == nil || try.Request.Method != "POST" || try.Request.Header.Get("X-Key") != "****" ||
			!strings.Contains(try.Request.Body, `"kind":`) {
			t.Errorf("%s: request %+v response %+v", key, try.Request, try.Response)
		}
		if rec.Outcome == "success" && (len(try.Response.Body) > history.MaxExchangeBody+40 || !strings.Contains(try.Response.Body, "(cut;")) {
			t.Errorf("%s: a %d-byte body kept as %d bytes: %.60q", key, len(big), len(try.Response.Body), try.Response.Body)
		}
		if rec.Outcome == "failure" && (try.Response.Status != 422 || !strings.Contains(try.Response.Body, `"echo":"****"`)) {
			t.Errorf("%s: response %+v", key, try.Response)
		}
	}
	want := map[string]bool{"none success": false, "none failure": false, "failed success": false,
		"failed failure": true, "all success": true, "all failure": true}
	if fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Fatalf("exchanges kept %v, want %v", kept, want)
	}
}
