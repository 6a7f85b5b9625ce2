package template_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/plumbhq/plumb/template"
)

func urlData(base string, lead map[string]any) map[string]any {
	return map[string]any{
		"settings": map[string]any{"base_url": base, "host": "api.partner.example", "port": "8443"},
		"lead":     lead,
	}
}

// Issue 13: lead data must never change the host a request goes to.
func TestURLLeadCannotChangeHostAfterBase(t *testing.T) {
	s := newSet()
	tm := mustCompile(t, s, "{{settings.base_url}}{{lead.x}}", template.URL)
	for _, base := range []string{"https://api.partner.example", "https://api.partner.example:443", "http://10.0.0.1"} {
		want, _ := url.Parse(base)
		for _, x := range []string{
			"@127.0.0.2:9932", ":9932", ".evil.example", "x.evil.example", "23", "evil",
			"/../x", "?q=1", "#f", "\\@127.0.0.2", "%40127.0.0.2", "@", ":", "",
		} {
			out, err := tm.Render(urlData(base, map[string]any{"x": x}))
			if err != nil {
				if !errors.Is(err, template.ErrHost) {
					t.Errorf("base %q x %q: error %v does not match ErrHost", base, x, err)
				}
				if len(x) > 2 && strings.Contains(err.Error(), x) {
					t.Errorf("error shows the data: %v", err)
				}
				continue
			}
			u, perr := url.Parse(out)
			if perr != nil {
				continue // the engine refuses an invalid URL: nothing is sent
			}
			if u.Scheme != want.Scheme || u.Host != want.Host || u.User != nil {
				t.Errorf("base %q x %q: rendered %q goes to %q (user %v), want %q", base, x, out, u.Host, u.User, want.Host)
			}
		}
	}
	// The attack of the issue: x="@127.0.0.2:9932" never reaches 127.0.0.2.
	out, err := tm.Render(urlData("https://api.partner.example", map[string]any{"x": "@127.0.0.2:9932"}))
	if err == nil {
		if u, perr := url.Parse(out); perr == nil && u.Hostname() == "127.0.0.2" {
			t.Fatalf("rendered %q reaches 127.0.0.2", out)
		}
	}
	// With a base that has a path, data after it is one escaped segment.
	out, err = tm.Render(urlData("https://api.partner.example/v1/", map[string]any{"x": "@127.0.0.2:9932"}))
	if err != nil || out != "https://api.partner.example/v1/%40127%2E0%2E0%2E2%3A9932" {
		t.Errorf("Render = %q, %v", out, err)
	}
}

func TestURLDataAfterBaseAndSlashIsPath(t *testing.T) {
	tm := mustCompile(t, newSet(), "{{settings.base_url}}/{{lead.x}}", template.URL)
	for x, want := range map[string]string{
		"@127.0.0.2:9932": "https://api.partner.example/@127.0.0.2:9932",
		".evil.example":   "https://api.partner.example/.evil.example",
		"a/b":             "https://api.partner.example/a%2Fb",
	} {
		out, err := tm.Render(urlData("https://api.partner.example", map[string]any{"x": x}))
		if err != nil || out != want {
			t.Errorf("x %q: Render = %q, %v; want %q", x, out, err, want)
		}
		if u, err := url.Parse(out); err != nil || u.Host != "api.partner.example" {
			t.Errorf("x %q: host of %q: %v", x, out, err)
		}
	}
}

func TestURLLeadInAuthorityIsCompileError(t *testing.T) {
	s := newSet()
	for _, src := range []string{
		"https://api.partner.example{{lead.x}}",
		"https://api.partner.example{{lead.x}}/path",
		"http://host:{{lead.port}}/",
		"http://{{lead.host}}/x",
		"http{{lead.s}}://h/",
		"{{lead.url}}",
		"{{lead.x}}/path",
		"//{{lead.host}}/x",
		"{{settings.base_url}}//{{lead.host}}/x",
		"https://{{ settings.host | default lead.x }}/",
		"https://{{ with lead.x }}{{ . }}{{ end }}.example/",
		"https://{{ range lead.l }}a{{ end }}.example/",
		"https://{{ $h := lead.h }}{{ $h }}/",
		"https://{{ printf \"%s\" captured.x }}/",
		"https://{{steps.a.host}}/", "https://{{vars.host}}/", "https://{{response.body}}/", "https://{{batch.x}}/",
		"https://{{ . }}/",
	} {
		_, err := s.Compile("url", src, template.URL)
		var e *template.Error
		if !errors.As(err, &e) || e.Line != 1 || e.Col == 0 || !strings.Contains(e.Msg, "cannot") {
			t.Errorf("Compile(%q) = %v, want a positioned *Error", src, err)
		}
	}
	// Settings and literals may write scheme, host and port.
	for src, want := range map[string]string{
		"{{settings.base_url}}/v2/{{lead.x}}":                         "https://b.example/v2/a%2Fb",
		"https://{{settings.host}}:{{settings.port}}/x/{{lead.x}}":    "https://api.partner.example:8443/x/a%2Fb",
		"https://{{ with settings.host }}{{ . }}{{ end }}/{{lead.x}}": "https://api.partner.example/a%2Fb",
		"https://api.partner.example/{{lead.x}}?q={{lead.x}}":         "https://api.partner.example/a%2Fb?q=a%2Fb",
		"/relative/{{lead.x}}":                                        "/relative/a%2Fb",
	} {
		out, err := mustCompile(t, s, src, template.URL).Render(urlData("https://b.example", map[string]any{"x": "a/b"}))
		if err != nil || out != want {
			t.Errorf("Render(%q) = %q, %v; want %q", src, out, err, want)
		}
	}
}

func TestURLAllowHosts(t *testing.T) {
	s := newSet()
	allowed := []string{"eu.partner.example", "*.us.partner.example", "http://127.0.0.1:9000"}
	tm, err := s.Compile("url", "https://{{lead.region}}.partner.example/{{lead.x}}", template.URL, template.AllowHosts(allowed))
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(urlData("", map[string]any{"region": "eu", "x": "1"}))
	if err != nil || out != "https://eu.partner.example/1" {
		t.Errorf("Render = %q, %v", out, err)
	}
	for _, region := range []string{"evil.example/", "x@127.0.0.2:9932", "evil.example#", "us", "evil"} {
		out, err := tm.Render(urlData("", map[string]any{"region": region, "x": "1"}))
		if !errors.Is(err, template.ErrHost) {
			t.Errorf("region %q: Render = %q, %v; want ErrHost", region, out, err)
		}
	}
	whole, err := s.Compile("url", "{{lead.url}}", template.URL, template.AllowHosts(allowed))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := whole.Value(urlData("", map[string]any{"url": "https://evil.example/"})); !errors.Is(err, template.ErrHost) {
		t.Errorf("Value = %v, %v; want ErrHost", v, err)
	}
	if v, err := whole.Value(urlData("", map[string]any{"url": "https://eu.partner.example/x"})); err != nil || v != "https://eu.partner.example/x" {
		t.Errorf("Value = %v, %v", v, err)
	}
	// The entry pins https on 443: lead data picks neither http nor a port.
	for _, u := range []string{"http://eu.partner.example/x", "https://eu.partner.example:8443/x", "http://eu.partner.example:443/x",
		"https://127.0.0.1:9000/", "http://a.us.partner.example/"} {
		if v, err := whole.Render(urlData("", map[string]any{"url": u})); !errors.Is(err, template.ErrHost) {
			t.Errorf("url %q: Render = %v, %v; want ErrHost", u, v, err)
		}
	}
	scheme := mustCompile(t, s, "{{lead.scheme}}://eu.partner.example/", template.URL, template.AllowHosts(allowed))
	if v, err := scheme.Render(urlData("", map[string]any{"scheme": "http"})); !errors.Is(err, template.ErrHost) {
		t.Errorf("scheme http: Render = %v, %v; want ErrHost", v, err)
	}
	port, err := s.Compile("url", "http://127.0.0.1:{{lead.port}}/", template.URL, template.AllowHosts(allowed))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := port.Render(urlData("", map[string]any{"port": "9000"})); err != nil || out != "http://127.0.0.1:9000/" {
		t.Errorf("Render = %q, %v", out, err)
	}
	for _, p := range []string{"9932@127.0.0.2:9932", "9001", "9000@evil.example"} {
		if out, err := port.Render(urlData("", map[string]any{"port": p})); !errors.Is(err, template.ErrHost) {
			t.Errorf("port %q: Render = %q, %v; want ErrHost", p, out, err)
		}
	}
}

// Issue 25: an allow_hosts entry pins the scheme and port too, so lead
// data cannot send a key over http:// or to another port of a listed host.
func TestCheckHost(t *testing.T) {
	allowed := []string{"api.example.com", "*.eu.example.com", "10.0.0.1:8443", "[::1]:9000",
		"http://plain.example.com", "HTTP://Dev.Example.com:8080/", "https://secure.example.com:444"}
	for raw, ok := range map[string]bool{
		"https://api.example.com/x":             true,
		"https://API.example.com./x":            true,
		"https://api.example.com:443/x":         true,
		"HTTPS://api.example.com/x":             true,
		"http://api.example.com/":               false, // the entry means https
		"http://api.example.com:443/":           false,
		"https://api.example.com:8443/":         false, // the entry means port 443
		"http://api.example.com:8080/":          false,
		"ws://api.example.com/":                 false,
		"ftp://api.example.com:443/":            false,
		"https://a.eu.example.com/":             true,
		"http://a.eu.example.com/":              false,
		"https://a.eu.example.com:8443/":        false,
		"https://eu.example.com/":               false,
		"https://api.example.com.evil/":         false,
		"https://u@api.example.com/":            false,
		"https://10.0.0.1:8443/":                true,
		"http://10.0.0.1:8443/":                 false,
		"https://10.0.0.1/":                     false,
		"https://[::1]:9000/":                   true,
		"http://[::1]:9000/":                    false,
		"https://[::1]/":                        false,
		"http://plain.example.com/":             true,
		"http://plain.example.com:80/":          true,
		"https://plain.example.com/":            false,
		"http://plain.example.com:8080/":        false,
		"http://dev.example.com:8080/":          true,
		"http://dev.example.com/":               false,
		"https://dev.example.com:8080/":         false,
		"https://secure.example.com:444/":       true,
		"https://secure.example.com/":           false,
		"mailto:api.example.com":                false,
		"https://evil.example/?api.example.com": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = template.CheckHost(u, allowed)
		if (err == nil) != ok || (err != nil && !errors.Is(err, template.ErrHost)) {
			t.Errorf("CheckHost(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestCheckAllowedHost(t *testing.T) {
	for _, good := range []string{"api.example.com", "api.example.com:8443", "http://api.example.com",
		"https://api.example.com:8443", "https://api.example.com/", "*.example.com", "http://*.example.com:8080",
		"10.0.0.1", "[::1]", "http://[::1]:9000", "API.Example.com."} {
		if err := template.CheckAllowedHost(good); err != nil {
			t.Errorf("CheckAllowedHost(%q) = %v, want nil", good, err)
		}
	}
	for _, bad := range []string{"", "ftp://api.example.com", "ws://h", "https://", "api.example.com/v1",
		"api.example.com?x", "u@api.example.com", "api.example.com:0", "api.example.com:65536",
		"api.example.com:http", "api.example.com:", "::1", "[api.example.com]", "*", "*.", "a b",
		"api.example.com:+443", "api.example.com:0443", "*.example.com:*", `api.exa\mple.com`, "ex*ample.com"} {
		if err := template.CheckAllowedHost(bad); err == nil {
			t.Errorf("CheckAllowedHost(%q) = nil, want an error", bad)
		}
	}
	// An invalid entry matches nothing.
	u, _ := url.Parse("https://api.example.com/v1")
	if err := template.CheckHost(u, []string{"api.example.com/v1"}); err == nil {
		t.Error("an invalid entry matched")
	}
}

// Issue 25: ".." from lead data was sent as %2E%2E, which servers that
// decode %2E (or %2F, or treat '\' as '/') resolve as "..". A URL whose
// data makes such a segment is not rendered.
func TestURLDotSegments(t *testing.T) {
	s := newSet()
	tm := mustCompile(t, s, "https://h.example/a/{{lead.x}}/b?q={{lead.x}}", template.URL)
	for _, x := range []string{".", "..", "../x", "x/../y", "x/..", "..\\x", "x\\..\\y", "%2e%2E", "%252e.", "..;x", ".;", ".. ", "./x"} {
		out, err := tm.Render(urlData("", map[string]any{"x": x}))
		if !errors.Is(err, template.ErrDotSegment) || !strings.HasPrefix(err.Error(), "template t: ") {
			t.Errorf("x %q: Render = %q, %v; want ErrDotSegment", x, out, err)
		}
	}
	for x, want := range map[string]string{
		"...":  "https://h.example/a/.../b?q=...",
		"a.b":  "https://h.example/a/a.b/b?q=a.b",
		"..x":  "https://h.example/a/..x/b?q=..x",
		".x":   "https://h.example/a/.x/b?q=.x",
		"a/b":  "https://h.example/a/a%2Fb/b?q=a%2Fb",
		"50%":  "https://h.example/a/50%25/b?q=50%25",
		"a;b":  "https://h.example/a/a%3Bb/b?q=a%3Bb",
		"x..y": "https://h.example/a/x..y/b?q=x..y",
	} {
		out, err := tm.Render(urlData("", map[string]any{"x": x}))
		if err != nil || out != want {
			t.Errorf("x %q: Render = %q, %v; want %q", x, out, err, want)
		}
	}
	// Two actions, or an action next to literal dots, in one segment; data
	// right after a base that ends in '/'; the query and fragment are not
	// paths.
	two := mustCompile(t, s, "https://h.example/a/{{lead.x}}{{lead.y}}/b", template.URL)
	if _, err := two.Render(urlData("", map[string]any{"x": ".", "y": "."})); !errors.Is(err, template.ErrDotSegment) {
		t.Errorf("two actions: %v, want ErrDotSegment", err)
	}
	lit := mustCompile(t, s, "https://h.example/a/.{{lead.x}}/b", template.URL)
	if _, err := lit.Render(urlData("", map[string]any{"x": "."})); !errors.Is(err, template.ErrDotSegment) {
		t.Errorf("literal dot: %v, want ErrDotSegment", err)
	}
	base := mustCompile(t, s, "{{settings.base_url}}{{lead.x}}", template.URL)
	if _, err := base.Render(urlData("https://h.example/v1/", map[string]any{"x": ".."})); !errors.Is(err, template.ErrDotSegment) {
		t.Errorf("after a base: %v, want ErrDotSegment", err)
	}
	frag := mustCompile(t, s, "https://h.example/a?q={{lead.x}}#{{lead.x}}", template.URL)
	if out, err := frag.Render(urlData("", map[string]any{"x": ".."})); err != nil || out != "https://h.example/a?q=..#%2E%2E" {
		t.Errorf("query and fragment: %q, %v", out, err)
	}
}

// Issue 25: control flow on untrusted data must not decide what is written
// before a URL's path, or lead data picks between literal hosts (and the
// credentials go to the one it picks).
func TestURLUntrustedControlFlowBeforePathIsCompileError(t *testing.T) {
	s := newSet()
	for _, src := range []string{
		"{{if lead.f}}https://a.example{{else}}https://b.example{{end}}/x",
		"https://{{if lead.f}}a{{else}}b{{end}}.example/x",
		"https://api.example{{if lead.f}}:8443{{end}}/x",
		"https://{{if lead.f}}u@{{end}}api.example/x",
		"http{{if lead.tls}}s{{end}}://api.example/x",
		"{{settings.base_url}}{{if lead.f}}.evil.example{{end}}/x",
		"{{settings.base_url}}{{if lead.f}}/{{end}}/evil.example/x",
		"{{settings.base_url}}/{{if lead.f}}/evil.example{{end}}/x",
		"/{{if lead.f}}/evil.example{{end}}/x",
		"{{if lead.f}}{{settings.base_url}}{{else}}{{settings.other}}{{end}}/x",
		"{{settings.base_url}}/{{if lead.f}}{{settings.other}}{{end}}x",
		"{{with lead.f}}https://a.example/{{else}}https://b.example/{{end}}x",
		"{{if settings.a}}https://a.example{{else if lead.f}}https://b.example{{else}}https://c.example{{end}}/x",
		"https://{{if eq settings.region lead.r}}eu{{else}}us{{end}}.example/",
		"https://{{if not (empty captured.x)}}eu{{else}}us{{end}}.example/",
		"{{$x := lead.f}}{{if $x}}https://a.example{{else}}https://b.example{{end}}/",
		"{{settings.base_url}}{{range lead.l}}.x{{end}}/p",
		"{{settings.base_url}}{{range settings.parts}}{{if lead.stop}}{{break}}{{end}}.{{.}}{{end}}/x",
		"{{settings.base_url}}{{range settings.parts}}{{with lead.skip}}{{continue}}{{end}}.{{.}}{{end}}/x",
		"{{if lead.a}}{{if settings.b}}https://a.example{{else}}https://b.example{{end}}{{else}}https://a.example{{end}}/",
	} {
		_, err := s.Compile("url", src, template.URL)
		var e *template.Error
		if !errors.As(err, &e) || e.Line != 1 || e.Col == 0 || !strings.Contains(e.Msg, "cannot choose the URL") {
			t.Errorf("Compile(%q) = %v, want a positioned error", src, err)
		}
	}
	// The error points at the first byte that would be chosen.
	_, err := s.Compile("url", "https://api.example{{if lead.f}}:8443{{end}}/x", template.URL)
	if e := (*template.Error)(nil); !errors.As(err, &e) || e.Col != 33 || !strings.Contains(e.Msg, "lead.f") {
		t.Errorf("error %v, want column 33 naming lead.f", err)
	}
	// Settings may decide; lead data may decide what follows the path's
	// first '/'; with allow_hosts the rendered origin is checked instead.
	data := map[string]any{
		"settings": map[string]any{"base_url": "https://b.example", "eu": true, "parts": []any{"a", "b"}},
		"lead":     map[string]any{"f": true, "v2": true, "l": []any{"p", "q"}, "x": "1"},
	}
	for src, want := range map[string]string{
		"{{if settings.eu}}https://eu.example{{else}}https://us.example{{end}}/{{lead.x}}": "https://eu.example/1",
		"{{settings.base_url}}/{{if lead.v2}}v2/{{end}}leads":                              "https://b.example/v2/leads",
		"https://a.example/{{if lead.f}}x{{else}}y{{end}}":                                 "https://a.example/x",
		"https://a.example/p?{{if lead.f}}a=1{{end}}":                                      "https://a.example/p?a=1",
		"https://a.example/{{range lead.l}}{{.}}/{{end}}":                                  "https://a.example/p/q/",
		"https://a.example{{if lead.f}}{{end}}/x":                                          "https://a.example/x",
		"{{settings.base_url}}/{{if lead.f}}{{lead.x}}{{end}}":                             "https://b.example/1",
		"{{settings.base_url}}{{range settings.parts}}/{{.}}{{end}}/x":                     "https://b.example/a/b/x",
	} {
		out, err := mustCompile(t, s, src, template.URL).Render(data)
		if err != nil || out != want {
			t.Errorf("Render(%q) = %q, %v; want %q", src, out, err, want)
		}
	}
	tm := mustCompile(t, s, "{{if lead.f}}https://a.example{{else}}https://b.example{{end}}/x", template.URL,
		template.AllowHosts([]string{"a.example"}))
	if out, err := tm.Render(map[string]any{"lead": map[string]any{"f": true}}); err != nil || out != "https://a.example/x" {
		t.Errorf("listed host: Render = %q, %v", out, err)
	}
	if out, err := tm.Render(map[string]any{"lead": map[string]any{"f": false}}); !errors.Is(err, template.ErrHost) {
		t.Errorf("unlisted host: Render = %q, %v; want ErrHost", out, err)
	}
}

// The same against a real server that decodes the path the lenient way
// (percent-decoding more than once, '\' as '/', ";params" dropped) and then
// resolves dot segments: whatever the lead value, a URL that renders stays
// under /files/ on that server.
func TestURLDotSegmentsAgainstADecodingServer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resolved := path.Clean("/" + strings.Join(lenientSegments(r.URL.EscapedPath()), "/"))
		mu.Lock()
		seen = append(seen, resolved)
		mu.Unlock()
	}))
	defer srv.Close()
	s := newSet()
	tms := []*template.Template{
		mustCompile(t, s, "{{settings.base_url}}/files/{{lead.x}}/raw", template.URL),
		mustCompile(t, s, "{{settings.base_url}}/files/{{lead.x}}{{lead.x}}", template.URL),
		mustCompile(t, s, "{{settings.files_url}}{{lead.x}}", template.URL),
	}
	values := append([]string{"..%2f", "..\\", "..;", ".. ", "a/../../b", "%252e%252e", "x", ""}, fuzzSeeds...)
	sent := 0
	for _, tm := range tms {
		for _, x := range values {
			out, err := tm.Render(map[string]any{"lead": map[string]any{"x": x},
				"settings": map[string]any{"base_url": srv.URL, "files_url": srv.URL + "/files/"}})
			if err != nil {
				continue
			}
			resp, err := http.Get(out)
			if err != nil {
				continue // not a URL the client sends
			}
			resp.Body.Close()
			sent++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != sent || sent < 10 {
		t.Fatalf("the server saw %d of %d requests", len(seen), sent)
	}
	for _, p := range seen {
		if p != "/files" && !strings.HasPrefix(p, "/files/") {
			t.Errorf("the server resolved a request to %q, outside /files/", p)
		}
	}
}
