package engine

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const originsYAML = `version: 1
name: origins
settings:
  base_url: { default: "https://API.partner.example/v2" }
  host:     { default: "eu.partner.example" }
  token_url: { default: "https://auth.partner.example/oauth/token" }
  account:  {}
  key:      { secret: true, default: "k-SECRET-host-part" }
auth:
  type: oauth2
  token_url: "{{settings.token_url}}"
  client_id: c
  client_secret: "{{settings.key}}"
steps:
  - name: base
    request: { url: "{{settings.base_url}}{{lead.path}}" }
  - name: literal
    request: { url: "http://literal.example:8080/x/{{lead.id | upper}}" }
  - name: hostvar
    request: { url: "https://{{settings.host}}:8443/{{settings.account}}/{{lead.id}}" }
    variants:
      - when: lead.eu == true
        url: "https://eu2.partner.example/{{lead.id}}"
    fallback:
      - request: { url: "https://backup.partner.example/x" }
  - name: branchpath
    request: { url: "https://three.partner.example/{{if lead.a}}a{{else}}b{{end}}" }
  - name: missing
    request: { url: "https://{{settings.account}}.partner.example/x" }
`

// TestOrigins: every URL of the file is listed by the origin its literal
// text and settings give it; a host written from a missing setting is
// unknown; allow_hosts bounds hosts lead data chooses (without it, lead
// data choosing a host, by a value or a condition, is a load error).
func TestOrigins(t *testing.T) {
	p, err := Parse("origins.yaml", []byte(originsYAML))
	if err != nil {
		t.Fatal(err)
	}
	o := p.Origins(Config{})
	want := []string{"http://literal.example:8080", "https://API.partner.example:443", "https://auth.partner.example:443",
		"https://backup.partner.example:443", "https://eu.partner.example:8443", "https://eu2.partner.example:443",
		"https://three.partner.example:443"}
	if got := o.List(); !slices.Equal(got, want) {
		t.Fatalf("origins:\n got %q\nwant %q", got, want)
	}
	line := func(s string) string {
		return "origins.yaml:" + strconv.Itoa(1+strings.Count(originsYAML[:strings.Index(originsYAML, s)], "\n")) + ":"
	}
	if u := o.Unknown(); len(u) != 1 || !strings.HasPrefix(u[0], line("{{settings.account}}.partner")) {
		t.Fatalf("unknown: %q", u)
	}
	// settings move the origins; a secret in a host is masked when shown
	o2 := p.Origins(Config{Values: map[string]any{"base_url": "http://127.0.0.1:9999", "account": "k-SECRET-host-part"}})
	if !slices.Contains(o2.List(), "http://127.0.0.1:9999") || !slices.Contains(o2.List(), "https://****.partner.example:443") {
		t.Fatalf("with settings: %q", o2.List())
	}
	out := o2.Outside(o)
	if !slices.Contains(out, "http://127.0.0.1:9999") || !slices.Contains(out, "https://****.partner.example:443") ||
		slices.ContainsFunc(out, func(s string) bool { return strings.Contains(s, "SECRET") || strings.Contains(s, "literal") }) {
		t.Fatalf("outside: %q", out)
	}
	if out := o.Outside(o); len(out) != 1 { // the unknown URL only
		t.Fatalf("a plan is within itself but for its unknown URLs: %q", out)
	}
	for raw, ok := range map[string]bool{
		"https://api.partner.example/v2/leads": true, "https://API.partner.example.:443/x": true,
		"http://api.partner.example/v2": false, "https://api.partner.example:8443/": false,
		"https://evil.example/": false, "http://literal.example:8080/y": true,
	} {
		u, _ := url.Parse(raw)
		if o.Allows(u) != ok {
			t.Errorf("Allows(%s) = %v", raw, !ok)
		}
	}
	// allow_hosts: entries are patterns; URLs they bound are not unknown
	withHosts := strings.Replace(originsYAML, "steps:\n", "http: { allow_hosts: [\"*.partner.example\"] }\nsteps:\n", 1)
	withHosts = strings.Replace(withHosts, `"{{settings.base_url}}{{lead.path}}"`, `"https://{{lead.sub}}.partner.example/x"`, 1)
	withHosts = strings.Replace(withHosts, "  - name: literal\n    request: { url: \"http://literal.example:8080/x/{{lead.id | upper}}\" }\n", "", 1)
	ph, err := Parse("hosts.yaml", []byte(withHosts))
	if err != nil {
		t.Fatal(err)
	}
	oh := ph.Origins(Config{Values: map[string]any{"account": "acc"}})
	if len(oh.Unknown()) != 0 || !slices.Equal(oh.AllowHosts(), []string{"*.partner.example"}) {
		t.Fatalf("allow_hosts: unknown %q hosts %q", oh.Unknown(), oh.AllowHosts())
	}
	if u, _ := url.Parse("https://anything.partner.example/"); !oh.Allows(u) {
		t.Fatal("an allow_hosts host is allowed")
	}
	if out := oh.Outside(o); !slices.Contains(out, "allow_hosts: *.partner.example") {
		t.Fatalf("a new allow_hosts entry is outside: %q", out)
	}
	if out := o.Outside(oh); slices.Contains(out, "https://eu2.partner.example:443") {
		t.Fatalf("an origin an allow_hosts entry matches is inside: %q", out)
	}
	// a runner lists the origins of its settings
	r, err := p.Bind(Config{Values: map[string]any{"account": "acc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if ro := r.Origins(); !slices.Contains(ro.List(), "https://acc.partner.example:443") || len(ro.Unknown()) != 0 {
		t.Fatalf("runner origins: %q unknown %q", ro.List(), ro.Unknown())
	}
}

// TestWithRootTLSFiles: with WithRoot the http.tls files are read under
// the root only; without it, anywhere.
func TestWithRootTLSFiles(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "dir")
	os.MkdirAll(root, 0o755)
	ca := newTestCA(t)
	os.WriteFile(filepath.Join(base, "ca.pem"), ca.pem, 0o644)
	os.WriteFile(filepath.Join(root, "ca.pem"), ca.pem, 0o644)
	file := filepath.Join(root, "a.yaml")
	src := func(ca string) []byte {
		return []byte("version: 1\nname: a\nhttp: { tls: { ca_file: \"" + ca + "\" } }\nsteps:\n  - name: s\n    request: { url: \"https://x.example/\" }\n")
	}
	for ca, ok := range map[string]bool{"ca.pem": true, "../ca.pem": false, filepath.Join(base, "ca.pem"): false, filepath.Join(root, "ca.pem"): true} {
		p, err := Parse(file, src(ca), WithRoot(root))
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Bind(Config{})
		if (err == nil) != ok {
			t.Errorf("ca_file %s: %v", ca, err)
		}
		if err == nil {
			r.Close(context.Background())
		}
		if p, _ := Parse(file, src(ca)); p != nil {
			if r, err := p.Bind(Config{}); err != nil {
				t.Errorf("ca_file %s without a root: %v", ca, err)
			} else {
				r.Close(context.Background())
			}
		}
	}
	// Load reads its file under the root only
	os.WriteFile(filepath.Join(base, "b.yaml"), src("ca.pem"), 0o644)
	if _, err := Load(filepath.Join(base, "b.yaml"), WithRoot(root)); err == nil {
		t.Fatal("Load WithRoot read a file outside the root")
	}
	os.WriteFile(file, src("ca.pem"), 0o644)
	if _, err := Load(file, WithRoot(root)); err != nil {
		t.Fatal(err)
	}
}

// TestOriginsReadTextAfterData: data written after a URL's base writes
// nothing in the URL its origin is read from (the URL each render is
// checked against), and the literal text after it is read: text that
// moves the authority ("…{{lead.x}}@other.host/") moves the origin, so a
// caller comparing origins sees it. A condition before the authority ends
// leaves the origin unknown.
func TestOriginsReadTextAfterData(t *testing.T) {
	for url, want := range map[string]string{
		`{{settings.base_url}}{{ lead.email | trunc 0 }}@127.0.0.1:18799/x`:      "http://127.0.0.1:18799",
		`{{settings.base_url}}{{lead.x}}.evil.example/x`:                         "http://api.partner.example.evil.example:80",
		`{{settings.base_url}}{{lead.x}}:8443/x`:                                 "http://api.partner.example:8443",
		`{{settings.base_url}}{{lead.x}}{{settings.port}}/x`:                     "http://api.partner.example:9000",
		`{{settings.base_url}}{{lead.x}}`:                                        "http://api.partner.example:80",
		`{{settings.base_url}}/{{lead.x}}@other.example/x`:                       "http://api.partner.example:80",
		`{{settings.base_url}}{{lead.x}}{{if settings.port}}@a.example{{end}}/x`: "",
		`{{settings.base_url}}{{$h := "x"}}{{$h}}/x`:                             "",
	} {
		src := "version: 1\nname: o\nsettings:\n  base_url: { default: \"http://api.partner.example\" }\n  port: { default: \":9000\" }\n" +
			"steps:\n  - name: s\n    request: { url: '" + url + "' }\n"
		p, err := Parse("o.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		o := p.Origins(Config{})
		if want == "" {
			if len(o.List()) != 0 || len(o.Unknown()) != 1 {
				t.Errorf("%s: origins %q unknown %q, want it unknown", url, o.List(), o.Unknown())
			}
			continue
		}
		if got := o.List(); len(got) != 1 || got[0] != want || len(o.Unknown()) != 0 {
			t.Errorf("%s: origins %q unknown %q, want %s", url, got, o.Unknown(), want)
		}
	}
}
