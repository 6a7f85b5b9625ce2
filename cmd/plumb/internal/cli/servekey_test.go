package cli

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
)

// TestServeTokenKey covers issue 26.6: PLUMB_TOKEN_KEY unset or empty is
// no key (the service starts; empty with a warning naming the variable); a
// value that is not a key stops the service with an error naming it and
// never showing the value.
func TestServeTokenKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for _, c := range []struct {
		name, value string
		set         bool
		ok, key     bool
		stderr, log string
	}{
		{name: "unset", ok: true},
		{name: "empty", set: true, ok: true, log: "PLUMB_TOKEN_KEY is set but empty: treated as unset"},
		{name: "blank", value: " \n", set: true, ok: true, log: "PLUMB_TOKEN_KEY is set but empty: treated as unset"},
		{name: "short", value: base64.StdEncoding.EncodeToString([]byte("not-a-32-byte-key")), set: true, stderr: "PLUMB_TOKEN_KEY decodes to 17 bytes, want 32"},
		{name: "not base64", value: "%%secret-ish%%", set: true, stderr: "PLUMB_TOKEN_KEY is not valid base64"},
		{name: "key", value: good, set: true, ok: true, key: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr, logs bytes.Buffer
			s := &stdio{stderr: &stderr, env: func(k string) (string, bool) {
				if k == "PLUMB_TOKEN_KEY" {
					return c.value, c.set
				}
				return "", false
			}}
			key, ok := tokenKey(s, slog.New(slog.NewJSONHandler(&logs, nil)))
			if ok != c.ok || (len(key) == 32) != c.key {
				t.Fatalf("tokenKey = %d bytes, %v; want key %v, ok %v", len(key), ok, c.key, c.ok)
			}
			if !strings.Contains(stderr.String(), c.stderr) || (c.stderr == "") != (stderr.Len() == 0) {
				t.Fatalf("stderr %q, want %q", stderr.String(), c.stderr)
			}
			if !strings.Contains(logs.String(), c.log) || (c.log == "") != (logs.Len() == 0) {
				t.Fatalf("log %q, want %q", logs.String(), c.log)
			}
			if c.value != "" && strings.TrimSpace(c.value) != "" && strings.Contains(stderr.String()+logs.String(), c.value) {
				t.Fatal("the value is shown")
			}
		})
	}
}
