package har

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/importer/importtest"
)

var harFileName = filepath.Join("testdata", "partner.har")

func importHAR(t *testing.T, opts Options) (*importer.Integration, string) {
	t.Helper()
	b, err := os.ReadFile(harFileName)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Import(harFileName, b, opts)
	if err != nil {
		t.Fatalf("%+v: %v", opts, err)
	}
	return in, string(in.YAML())
}

// The recorded answers become the test case: served as recorded, with the
// outcome plumb's rules give them; credentials are never copied, and a
// token an earlier answer returned is read from that step's capture.
func TestEntries(t *testing.T) {
	cases := []struct {
		opts    Options
		steps   int
		want    []string
		outcome string
	}{
		{Options{Entries: []int{3, 5}}, 2, []string{`authorization: "Bearer {{steps.post_session.token}}"`, "token: { json: token, redact: true }",
			"body: { token: test-token, expires_in: 3600, user: ana }", "authorization: Bearer test-token", `password: "{{settings.password}}"`,
			`tags: "{{lead.tags}}"`, "location: /v1/leads/L-9", "post_leads: { id: L-9, status: queued, score: 72.5 }"}, "success"},
		{Options{Entries: []int{6}}, 1, []string{"form:", `phone: "{{lead.phone}}"`, "status: 422", "error: phone is invalid",
			`auth: { type: bearer, token: "{{settings.token}}" }`}, "failure"},
		{Options{Entries: []int{7}}, 1, []string{"body: { id: L-9, status: qualified, owner: ana }", "get_leads: { id: L-9, status: qualified, owner: ana }"}, "success"},
		{Options{URL: "/quota$"}, 1, []string{`auth: { type: api_key, in: header, name: x-api-key, value: "{{settings.api_key}}" }`,
			"status: 503", `retry-after: "1"`}, "error"},
	}
	for _, c := range cases {
		in, out := importHAR(t, c.opts)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%+v: output lacks %q:\n%s", c.opts, w, out)
			}
		}
		for _, secret := range []string{"eyJhbGciOiJIUzI1NiJ9", "Tr0ub4dor", "abc123def456", "ak_live_0f9e8d7c", "Mozilla", "sec-ch-ua", "sec-fetch"} {
			if strings.Contains(out, secret) {
				t.Errorf("%+v: %q was copied:\n%s", c.opts, secret, out)
			}
		}
		if !strings.Contains(out, "outcome: "+c.outcome) || len(in.Steps) != c.steps {
			t.Errorf("%+v: want %d steps and outcome %s:\n%s", c.opts, c.steps, c.outcome, out)
		}
		importtest.RoundTrip(t, in)
	}
}

// Without a pick, the API entries are listed (page resources and CORS
// preflights left out); bad input is one line with a hint.
func TestBadHAR(t *testing.T) {
	b, _ := os.ReadFile(harFileName)
	_, err := Import("x.har", b, Options{})
	var ie *importer.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "has 5 API requests") {
		t.Fatalf("got %v", err)
	}
	listed := strings.Join(ie.Detail, "\n")
	if !strings.Contains(listed, "3  POST    https://api.partner.example/v1/session  → 200") || strings.Contains(listed, "app.js") || strings.Contains(listed, "OPTIONS") {
		t.Errorf("the list:\n%s", listed)
	}
	cases := []struct {
		src  string
		opts Options
		want string
	}{
		{"<html>", Options{}, "is not a HAR file"},
		{`{"log": {}}`, Options{}, "is not a HAR file (no log.entries)"},
		{string(b), Options{Entries: []int{99}}, "has no entry 99"},
		{string(b), Options{URL: "("}, `--url "("`},
		{string(b), Options{URL: "nomatch"}, "no entry of x.har matches"},
	}
	for _, c := range cases {
		in, err := Import("x.har", []byte(c.src), c.opts)
		if in != nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || ie.Hint == "" {
			t.Errorf("want one line with %q and a hint, got %v", c.want, err)
		}
	}
}

// A URL recorded with user:password@ is basic auth with a secret password
// setting, not a base_url holding the password in clear; the draft loads
// and its test passes.
func TestUserinfoIsBasicAuth(t *testing.T) {
	const pass = "PWURL-9x7c2e"
	har := `{"log": {"version": "1.2", "entries": [{
  "request": {"method": "GET", "url": "https://ana:` + pass + `@api.example.com/v1/leads/L-9", "headers": [], "queryString": []},
  "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}],
               "content": {"mimeType": "application/json", "text": "{\"id\": \"L-9\"}"}}}]}}`
	in, err := Import("userinfo.har", []byte(har), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := string(in.YAML())
	if strings.Contains(out, pass) || strings.Contains(out, "ana:") || !strings.Contains(out, "type: basic") {
		t.Fatalf("the password should be a basic auth's secret setting:\n%s", out)
	}
	importtest.RoundTrip(t, in)
}

// A --url that picks more requests than a flow holds is refused with a
// hint, at once, rather than building a flow of thousands of steps.
func TestFlowSizeBounded(t *testing.T) {
	var entries []string
	for i := range importer.MaxFlowSteps + 1 {
		entries = append(entries, `{"request": {"method": "GET", "url": "https://api.example.com/a/`+strconv.Itoa(i)+`", "headers": [], "queryString": []},
  "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}}`)
	}
	har := `{"log": {"version": "1.2", "entries": [` + strings.Join(entries, ",") + `]}}`
	_, err := Import("many.har", []byte(har), Options{URL: "/a/"})
	var ie *importer.Error
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "a flow holds at most") || ie.Hint == "" {
		t.Fatalf("want the pick refused, got %v", err)
	}
	if _, err := Import("many.har", []byte(har), Options{URL: "/a/[0-9]$"}); err != nil {
		t.Fatalf("ten entries: %v", err)
	}
}
