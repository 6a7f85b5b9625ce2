package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// noticeBuffer is a stderr that tells (seen closes) when a line about an
// idle connection has been written to it.
type noticeBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen chan struct{}
}

func (n *noticeBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.b.Write(p)
	if bytes.Contains(p, []byte("idle")) {
		select {
		case <-n.seen:
		default:
			close(n.seen)
		}
	}
	return len(p), nil
}

func (n *noticeBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// secretPieces lists what of secret must never show: every 8-byte piece
// raw, and the whole in base64 (at each of the three alignments, standard
// and URL alphabets) and in hex.
func secretPieces(secret string) []string {
	var out []string
	for i := 0; i+8 <= len(secret); i++ {
		out = append(out, secret[i:i+8])
	}
	for pad := range 3 {
		s := strings.Repeat("\x00", pad) + secret
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString([]byte(s))
			// drop the characters that mix in the bytes around it
			out = append(out, e[(pad+2)/3*4:len(e)-4])
		}
	}
	return append(out, hex.EncodeToString([]byte(secret)), strings.ToUpper(hex.EncodeToString([]byte(secret))))
}

// TestPartnerBytesOnIdleConnectionNeverReachStderr: a partner that answers
// 204 and then echoes the request (with the API key) on the same
// connection makes net/http log "Unsolicited response … starting with
// <its bytes>" through package log. plumb writes a fixed warning instead,
// under every output and log format, and no piece of the key in any
// encoding. The run's second step goes to another partner that answers
// only once the warning is on stderr, so the run cannot end first.
func TestPartnerBytesOnIdleConnectionNeverReachStderr(t *testing.T) {
	const secret = "SK_live_abcdefghijklmnop1234"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		got := fmt.Sprintf("%v %s", r.Header, body)
		fmt.Fprintf(conn, "HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n%s", len(got), got)
		io.Copy(io.Discard, conn) // until plumb closes it
	}))
	defer echo.Close()
	var stderr *noticeBuffer
	after := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stderr.seen:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte(`{}`))
	}))
	defer after.Close()

	dir := t.TempDir()
	file := filepath.Join(dir, "i.yaml")
	lead := filepath.Join(dir, "lead.json")
	os.WriteFile(file, []byte(`version: 1
name: idle
settings:
  api_key: { secret: true }
  echo_url: {}
  after_url: {}
auth: { type: api_key, in: header, name: X-API-Key, value: "{{settings.api_key}}" }
steps:
  - name: echo
    request: { method: POST, url: "{{settings.echo_url}}/204echo", body: { json: { key_echo: "{{settings.api_key}}" } } }
  - name: after
    request: { url: "{{settings.after_url}}/after" }
`), 0o644)
	os.WriteFile(lead, []byte(`{"id": "1"}`), 0o644)

	w, flags := log.Writer(), log.Flags()
	t.Cleanup(func() { log.SetOutput(w); log.SetFlags(flags) })
	for _, extra := range [][]string{{"--output", "ndjson"}, {"--output", "text", "--log-format", "json"}, {"-vv"}} {
		stderr = &noticeBuffer{seen: make(chan struct{})}
		// were plumb not to route the standard logger, its line would
		// come here
		log.SetOutput(stderr)
		args := append([]string{"run", "--lead", lead, "--set", "api_key=" + secret,
			"--set", "echo_url=" + echo.URL, "--set", "after_url=" + after.URL}, extra...)
		var stdout bytes.Buffer
		code := plumb(append(args, file), strings.NewReader(""), &stdout, stderr, nil)
		errs := stderr.String()
		if code != 0 || !strings.Contains(errs, idleWarning) {
			t.Errorf("%v: exit %d, want 0 and the idle-connection warning on stderr:\n%s", extra, code, errs)
		}
		for _, p := range secretPieces(secret) {
			if strings.Contains(errs, p) || strings.Contains(stdout.String(), p) {
				t.Errorf("%v: %q of the secret shows:\nstderr:\n%s\nstdout:\n%s", extra, p, errs, stdout.String())
			}
		}
	}
}

// TestStdlibLogCutsWhatLinesQuote: other lines of package log pass, but
// without what they quote (it may be a partner's bytes) and with control
// characters escaped.
func TestStdlibLogCutsWhatLinesQuote(t *testing.T) {
	var b bytes.Buffer
	l := log.New(stdlibLog{&b}, "", 0)
	l.Printf("http2: bogus greeting %q from %s", "X-Api-Key: SK_live_abc\\\"def", "1.2.3.4")
	l.Printf("proxy said %#q then \x1b[2Jclear\r and \xff", "SK_live_raw")
	l.Printf("unterminated %s", `"SK_live_tail`)
	want := "plumb: warning: http2: bogus greeting \"…\" from 1.2.3.4\n" +
		"plumb: warning: proxy said `…` then \\u001b[2Jclear\\r and \\xff\n" +
		"plumb: warning: unterminated \"…\"\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	l.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=<nil>", "SK_live_abc")
	if b.String() != idleWarning {
		t.Fatalf("got %q", b.String())
	}
}
