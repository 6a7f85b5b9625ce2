package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestExchangeDumpsEscapeControls: plumb run -vv and plumb try print a
// partner's answer as received but with what would drive the terminal
// escaped — escape sequences, a bare carriage return, C1 controls, DEL,
// bidi overrides, bytes that are not UTF-8 — so an answer cannot clear
// the screen or forge a line; readable text (UTF-8, tabs, CRLF line ends)
// stays as it is.
func TestExchangeDumpsEscapeControls(t *testing.T) {
	body := "\x1b[2J\x1b[Hfake line\r\nlead 2: x\rover\xc2\x9b31m\x7f\xff héllo ✓\tend\u202e"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Evil", "a\x80RED\xc2\x9b2J")
		w.WriteHeader(500)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "x.yaml")
	lead := filepath.Join(dir, "lead.json")
	os.WriteFile(file, []byte("version: 1\nname: x\nsettings: { base_url: {} }\nsteps:\n  - name: s\n    max_attempts: 1\n    request: { url: \"{{settings.base_url}}/s\" }\n"), 0o644)
	os.WriteFile(lead, []byte(`{}`), 0o644)
	wants := []string{
		"< \\u001b[2J\\u001b[Hfake line\r\n< lead 2: x\\rover\\u009b31m\\u007f\\xff héllo ✓\tend\\u202e\n",
		"< X-Evil: a\\x80RED\\u009b2J\n",
	}
	for _, args := range [][]string{{"run", "-vv"}, {"try"}} {
		var stdout, stderr bytes.Buffer
		code := Main(append(args, "--set", "base_url="+srv.URL, "--lead", lead, file), strings.NewReader(""), &stdout, &stderr, nil)
		dump := stderr.String()
		if args[0] == "try" {
			dump = stdout.String()
		}
		all := stdout.String() + stderr.String()
		if code != ExitLeadError {
			t.Errorf("%v: exit %d\n%s", args, code, all)
		}
		for _, w := range wants {
			if !strings.Contains(dump, w) {
				t.Errorf("%v: the dump has no %q:\n%s", args, w, dump)
			}
		}
		if strings.Contains(dump, "\u202e") {
			t.Errorf("%v: a bidi override in the dump:\n%q", args, dump)
		}
		if !utf8.ValidString(all) {
			t.Errorf("%v: invalid UTF-8 written:\n%q", args, all)
		}
		for i, r := range all {
			if r != '\n' && r != '\t' && !(r == '\r' && strings.HasPrefix(all[i+1:], "\n")) &&
				unicode.IsControl(r) {
				t.Errorf("%v: %U written raw at %d:\n%q", args, r, i, all)
				break
			}
		}
	}
}
