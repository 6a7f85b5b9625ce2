package engine

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Issue 25: an allow_hosts entry pins the scheme and the port, not only the
// host, so lead data cannot send the key over http:// to a partner listed
// as https, nor to another port of a listed host. The listener stands for
// the other origin: it must receive nothing unless the entry names it.
func TestAllowHostsPinSchemeAndPort(t *testing.T) {
	var got atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer other.Close()
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	run := func(entry string) *Result {
		t.Helper()
		src := "version: 1\nname: pin\nsettings: { key: { secret: true } }\nhttp:\n  allow_hosts: [\"" + entry + "\"]\n" +
			"steps:\n  - name: call\n    request:\n      url: \"{{lead.url}}\"\n      headers: { X-Api-Key: \"{{settings.key}}\" }\n"
		p, err := Parse("pin.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", entry, err)
		}
		r, err := p.Bind(Config{Values: map[string]any{"key": "k3y-pin"}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		return r.Run(context.Background(), map[string]any{"url": other.URL + "/leads"})
	}
	for _, entry := range []string{"127.0.0.1", "127.0.0.1:" + port, "https://127.0.0.1:" + port, "http://127.0.0.1", "http://127.0.0.1:1"} {
		res := run(entry)
		if res.Outcome != Error || res.Steps[0].Status != 0 || !strings.Contains(res.Reason, "allowed hosts") {
			t.Errorf("entry %q: %s %q, want an error naming the allowed hosts", entry, res.Outcome, res.Reason)
		}
		if strings.Contains(res.Reason, "k3y-pin") {
			t.Errorf("entry %q: the reason shows the key: %q", entry, res.Reason)
		}
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the other origin received %d requests", n)
	}
	if res := run("http://127.0.0.1:" + port); res.Outcome != Success || got.Load() != 1 {
		t.Fatalf("an entry naming the origin: %s %q, %d requests", res.Outcome, res.Reason, got.Load())
	}
}

// An allow_hosts entry that is not [http(s)://]host[:port] or *.suffix
// would match nothing: it is a load error at the list, with a hint.
func TestAllowHostsBadEntryIsLoadError(t *testing.T) {
	for _, entry := range []string{"api.example.com/v1", "ftp://api.example.com", "api.example.com:99999", "u@api.example.com", "::1"} {
		src := "version: 1\nname: pin\nhttp:\n  allow_hosts: [\"ok.example.com\", \"" + entry + "\"]\n" +
			"steps:\n  - name: call\n    request: { url: \"https://{{lead.host}}/\" }\n"
		_, err := Parse("pin.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "pin.yaml:4:16: http.allow_hosts: \""+entry+"\"") ||
			!strings.Contains(err.Error(), "http://api.example.com:8080") {
			t.Errorf("entry %q: Parse = %v, want a positioned allow_hosts error with a hint", entry, err)
		}
	}
}

// Issue 25: {{if lead.f}}host-a{{else}}host-b{{end}} lets lead data route the
// key between literal hosts. Without allow_hosts it is a load error pointing
// at allow_hosts; with it, the host lead data picks must be listed, and the
// listener standing for the other host receives nothing.
func TestLeadDataCannotPickBetweenLiteralHosts(t *testing.T) {
	var got atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer other.Close()
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer partner.Close()
	url := "{{if lead.f}}" + partner.URL + "{{else}}" + other.URL + "{{end}}/leads"
	load := func(extra string) (*Plan, error) {
		return Parse("route.yaml", []byte("version: 1\nname: route\nsettings: { key: { secret: true } }\n"+extra+
			"steps:\n  - name: call\n    request:\n      url: \""+url+"\"\n      headers: { X-Api-Key: \"{{settings.key}}\" }\n"))
	}
	if _, err := load(""); err == nil || !strings.Contains(err.Error(), "route.yaml:7:") ||
		!strings.Contains(err.Error(), "lead.f cannot choose the URL") || !strings.Contains(err.Error(), "allow_hosts") {
		t.Fatalf("load = %v, want a positioned error with an allow_hosts hint", err)
	}
	p, err := load("http:\n  allow_hosts: [\"" + partner.URL + "\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"key": "k3y-route"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), map[string]any{"f": true}); res.Outcome != Success {
		t.Fatalf("listed host: %s %q", res.Outcome, res.Reason)
	}
	if res := r.Run(context.Background(), map[string]any{"f": false}); res.Outcome != Error || res.Steps[0].Status != 0 {
		t.Fatalf("other host: %s %q, want an error before sending", res.Outcome, res.Reason)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
}

// Issue 25: `when: lead.x` loaded, then failed every lead whose x is a
// string. It is a load error at the value, with a hint saying how to
// compare it; a comparison loads and runs.
func TestBareValueConditionIsLoadError(t *testing.T) {
	srv, got := budgetPartner(t)
	for _, when := range []string{"lead.x", "lead.a == \"1\" && lead.x", "not lead.vip"} {
		src := "version: 1\nname: when\nsteps:\n  - name: call\n    when: '" + when + "'\n    request: { url: \"" + srv.URL + "/x\" }\n"
		_, err := Parse("when.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "when.yaml:5:") || !strings.Contains(err.Error(), "is a value, not a condition") ||
			!strings.Contains(err.Error(), "== true for a JSON boolean") {
			t.Errorf("when: %s: Parse = %v, want a positioned error with a hint", when, err)
		}
	}
	p, err := Parse("when.yaml", []byte("version: 1\nname: when\nsteps:\n  - name: call\n    when: 'lead.x != \"\"'\n    request: { url: \""+srv.URL+"/x\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), map[string]any{"x": "yes"}); res.Outcome != Success || got.Load() != 1 {
		t.Fatalf("%s %q", res.Outcome, res.Reason)
	}
}
