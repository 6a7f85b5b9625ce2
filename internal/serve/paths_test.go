package serve

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNonCanonicalPathsRefused: a path with . or .. segments, an empty
// segment or an encoded / is refused (400) before any routing: it reaches
// neither a webhook receiver nor the route it would name once cleaned.
func TestNonCanonicalPathsRefused(t *testing.T) {
	p := newPartner(t)
	dir := t.TempDir()
	writeIntegration(t, dir, p.URL)
	writeHookIntegration(t, dir, p.URL)
	// a hook whose path climbs into the API, as main accepted it
	s := testServer(t, Config{Dir: dir, Tokens: []string{testAPIToken}})
	base := "http://" + s.Addr()
	lead := []byte(`{"n": 1, "email": "a@x.example"}`)
	for _, path := range []string{
		"/v1/hooks/../integrations/partner/run", "/v1/hooks/./acare", "/v1/hooks//acare", "//v1/hooks/acare",
		"/v1/hooks/acare/.", "/v1/hooks/acare/x/..", "/v1/hooks%2Facare", "/v1/hooks/%2E%2E/integrations/partner/run",
		"/v1/integrations/partner/../partner/run", "/v1%2Fintegrations/partner/run", "/v1/integrations%5Cpartner/run",
	} {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer " + testAPIToken}} {
			req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(lead))
			must(t, err)
			req.Header.Set("Content-Type", "application/json")
			if hdr != nil {
				req.Header.Set(hdr[0], hdr[1])
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			must(t, err)
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || errorCode(t, b.Bytes()) != CodeBadPath {
				t.Errorf("POST %s: %d %s, want 400 %s", path, resp.StatusCode, b.Bytes(), CodeBadPath)
			}
		}
		if code, _, err := post(base, path, event(1), hookSecret); err != nil || code != http.StatusBadRequest {
			t.Errorf("signed delivery to %s: %d %v, want 400", path, code, err)
		}
	}
	if n := len(p.snapshot()); n != 0 {
		t.Errorf("the partner saw %d requests", n)
	}
	// canonical paths still route, a trailing slash included
	if code, _, _ := post(base, "/v1/hooks/acare", event(2), hookSecret); code != 200 {
		t.Errorf("the hook: %d", code)
	}
	c := client{t: t, base: base, token: testAPIToken}
	if code, b := c.do("GET", "/v1/integrations/", "", nil); code != http.StatusNotFound || errorCode(t, b) != CodeNotFound {
		t.Errorf("/v1/integrations/: %d %s", code, b)
	}
}

// hookFile writes an integration NAME with a webhook (path set when not
// ""), in file (within dir), with its settings file.
func hookFile(t *testing.T, dir, file, name, path string) {
	t.Helper()
	y := strings.Replace(hookYAML, "name: acare", "name: "+name, 1)
	if path != "" {
		y = strings.Replace(y, "webhook:\n", "webhook:\n  path: "+path+"\n", 1)
	}
	must(t, os.WriteFile(filepath.Join(dir, file), []byte(y), 0o600))
	sf := SettingsFile(filepath.Join(dir, file))
	must(t, os.WriteFile(sf, []byte("base_url: http://127.0.0.1:1\nhook_secret: "+hookSecret+"\n"), 0o600))
}

// TestHookPathClaims: a hook path equal to another file's default path,
// two explicit equal paths and two files of one name are refused in every
// file of the clash, whichever loads first, each error naming the others;
// a hook path that is not canonical is refused at its line.
func TestHookPathClaims(t *testing.T) {
	type file struct{ file, name, path string }
	cases := []struct {
		what  string
		files []file
	}{
		{"explicit path on another's default, sorted after", []file{{"a.yaml", "a", ""}, {"b.yaml", "b", "/v1/hooks/a"}}},
		{"explicit path on another's default, sorted before", []file{{"a.yaml", "a", "/v1/hooks/b"}, {"b.yaml", "b", ""}}},
		{"two explicit paths", []file{{"a.yaml", "a", "/in"}, {"b.yaml", "b", "/in"}}},
		{"one name twice", []file{{"a.yaml", "same", ""}, {"b.yaml", "same", ""}}},
		{"three claims", []file{{"a.yaml", "a", "/in"}, {"b.yaml", "b", "/in"}, {"c/integration.yaml", "c", "/in"}}},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f.file)), 0o755))
				hookFile(t, dir, f.file, f.name, f.path)
			}
			s := testServer(t, Config{Dir: dir})
			c := client{t: t, base: "http://" + s.Addr()}
			infos := decode[struct{ Integrations []IntegrationInfo }](t, func() []byte { _, b := c.do("GET", "/v1/integrations", "", nil); return b }())
			if len(infos.Integrations) != len(tc.files) {
				t.Fatalf("%d integrations listed: %+v", len(infos.Integrations), infos)
			}
			for _, in := range infos.Integrations {
				if in.Health != "failed" || !strings.Contains(in.Error, "claimed by") {
					t.Errorf("%s: %s %q, want failed for a shared claim", in.File, in.Health, in.Error)
				}
				for _, f := range tc.files {
					if !strings.Contains(in.Error, filepath.Join(dir, f.file)) {
						t.Errorf("%s: the error does not name %s: %s", in.File, f.file, in.Error)
					}
				}
			}
			for _, path := range []string{"/v1/hooks/a", "/v1/hooks/b", "/in", "/v1/hooks/same"} {
				if code, b, _ := post(c.base, path, event(1), hookSecret); code != http.StatusNotFound {
					t.Errorf("a delivery to %s: %d %s, want 404 (nobody serves it)", path, code, b)
				}
			}
			// resolving the clash loads the file left
			last := tc.files[len(tc.files)-1]
			for _, f := range tc.files[:len(tc.files)-1] {
				must(t, os.Remove(filepath.Join(dir, f.file)))
			}
			rep, err := s.Reload()
			must(t, err)
			if len(rep.Failed) != 0 || len(rep.Loaded) != 1 {
				t.Fatalf("after the fix: %+v", rep)
			}
			want := last.path
			if want == "" {
				want = "/v1/hooks/" + last.name
			}
			if code, b, _ := post(c.base, want, event(1), hookSecret); code != http.StatusOK {
				t.Errorf("after the fix, %s: %d %s", want, code, b)
			}
		})
	}

	// a running file keeps running when a newcomer claims its path; the
	// newcomer is refused, naming it, and so is the running file's next load
	dir := t.TempDir()
	hookFile(t, dir, "a.yaml", "a", "")
	s := testServer(t, Config{Dir: dir})
	hookFile(t, dir, "b.yaml", "b", "/v1/hooks/a")
	rep, err := s.Reload()
	must(t, err)
	if len(rep.Failed) != 2 || !strings.Contains(rep.Failed[filepath.Join(dir, "b.yaml")], filepath.Join(dir, "a.yaml")) {
		t.Fatalf("newcomer: %+v", rep)
	}
	if code, _, _ := post("http://"+s.Addr(), "/v1/hooks/a", event(1), hookSecret); code != http.StatusOK {
		t.Errorf("the running version stopped serving its path: %d", code)
	}
	// the running file's new version does not load: its running version
	// still holds the path against a newcomer
	must(t, os.Remove(filepath.Join(dir, "b.yaml")))
	rep, err = s.Reload()
	must(t, err)
	if len(rep.Failed) != 0 {
		t.Fatalf("after removing the newcomer: %+v", rep)
	}
	must(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("version: 1\nname: [broken\n"), 0o600))
	hookFile(t, dir, "c.yaml", "c", "/v1/hooks/a")
	rep, err = s.Reload()
	must(t, err)
	if got := rep.Failed[filepath.Join(dir, "c.yaml")]; !strings.Contains(got, filepath.Join(dir, "a.yaml")) {
		t.Fatalf("a newcomer on a broken file's running path: %+v", rep)
	}
	if code, b, _ := post("http://"+s.Addr(), "/v1/hooks/a", event(2), hookSecret); code != http.StatusOK || !strings.Contains(string(b), `"id"`) {
		t.Errorf("the running version stopped serving its path: %d %s", code, b)
	}
}

// TestHookPathNotCanonical: a webhook path (given, or the default one of a
// name with / or . segments) that is not canonical is a load error at its
// line, never a route.
func TestHookPathNotCanonical(t *testing.T) {
	dir := t.TempDir()
	hookFile(t, dir, "up.yaml", "up", "/v1/hooks/../integrations/partner/run")
	hookFile(t, dir, "dot.yaml", "dot", "/hooks/./dot")
	hookFile(t, dir, "name.yaml", "../integrations/x/run", "")
	s := testServer(t, Config{Dir: dir})
	rep, err := s.Reload()
	must(t, err)
	want := map[string]string{
		"up.yaml":   `up.yaml:\d+:\d+: webhook: path "/v1/hooks/../integrations/partner/run" is not canonical: it means /v1/integrations/partner/run \(that is a route of plumb serve`,
		"dot.yaml":  `dot.yaml:\d+:\d+: webhook: path "/hooks/./dot" is not canonical: it means /hooks/dot \(write /hooks/dot\)`,
		"name.yaml": `name.yaml:\d+:\d+: webhook: the default path /v1/hooks/../integrations/x/run is not canonical`,
	}
	for f, re := range want {
		got := rep.Failed[filepath.Join(dir, f)]
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("%s: %q, want /%s/", f, got, re)
		}
	}
}

// TestSettingsFileNeverQuoted: a settings file that is not a mapping, or
// not valid YAML, is reported with its name and line, never with its
// content: not in the reload report, GET /v1/integrations or the logs.
func TestSettingsFileNeverQuoted(t *testing.T) {
	const secret = "sk_live_Q7x9Rm2Lp4Kd8Vn3"
	bodies := map[string]string{
		"scalar":        secret + "\n",
		"quoted scalar": `"` + secret + `"` + "\n",
		"list":          "- " + secret + "\n",
		"broken flow":   "base_url: http://x\napi_key: [" + secret + "\n",
		"unknown alias": "base_url: http://x\napi_key: *" + secret + "\n",
		"duplicate key": secret + ": 1\n" + secret + ": 2\n",
		"unclosed":      "base_url: \"" + secret + "\n",
		"bad indent":    "base_url: http://x\n  " + secret + ": 1\n api_key: 2\n",
		"tab":           "base_url:\n\t" + secret + "\n",
		"tagged":        "base_url: !!int " + secret + "\n",
		"key map":       "? [" + secret + "]\n: 1\n",
	}
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "partner.yaml"), []byte(partnerYAML), 0o600))
	logs := &lockedBuffer{}
	s := testServer(t, Config{Dir: dir, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	c := client{t: t, base: "http://" + s.Addr()}
	for what, body := range bodies {
		must(t, os.WriteFile(filepath.Join(dir, "partner.settings.yaml"), []byte(body), 0o600))
		rep, err := s.Reload()
		must(t, err)
		msg := rep.Failed[filepath.Join(dir, "partner.yaml")]
		if !strings.Contains(msg, "partner.settings.yaml") {
			t.Errorf("%s: the error does not name the settings file: %q", what, msg)
		}
		_, list := c.do("GET", "/v1/integrations", "", nil)
		for where, text := range map[string]string{"error": msg, "/v1/integrations": string(list), "logs": logs.String()} {
			for _, piece := range []string{secret[:7], secret[8:12], secret[len(secret)-4:]} {
				if strings.Contains(text, piece) {
					t.Errorf("%s: %s quotes the settings file (%q): %s", what, where, piece, text)
				}
			}
		}
	}
	// a good settings file still loads, anchors and merge keys included
	p := newPartner(t)
	must(t, os.WriteFile(filepath.Join(dir, "partner.settings.yaml"), []byte("# the partner\n<<: {base_url: "+p.URL+"}\n"), 0o600))
	rep, err := s.Reload()
	must(t, err)
	if len(rep.Failed) != 0 {
		t.Fatalf("a good settings file: %v", rep.Failed)
	}
	if code, b := c.do("POST", "/v1/integrations/partner/run", "application/json", []byte(`{"n": 1, "email": "a@x.example"}`)); code != 200 {
		t.Errorf("a good settings file: %d %s", code, b)
	}
}
