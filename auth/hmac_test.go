package auth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/auth"
)

// hmacVerifier is the partner's side, written independently of the
// package: it recomputes HMAC(secret, method+path+timestamp+body).
func hmacVerifier(secret string, newHash func() hash.Hash, decode func(string) ([]byte, error), prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Timestamp")
		sig, ok := strings.CutPrefix(r.Header.Get("X-Signature"), prefix)
		if ts == "" || !ok {
			http.Error(w, "missing signature", http.StatusUnauthorized)
			return
		}
		got, err := decode(sig)
		if err != nil {
			http.Error(w, "bad encoding", http.StatusUnauthorized)
			return
		}
		mac := hmac.New(newHash, []byte(secret))
		mac.Write([]byte(r.Method + r.URL.EscapedPath() + ts))
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, ts)
	})
}

// do signs and sends a POST of body, optionally sending tampered instead.
func doSigned(t *testing.T, a auth.Authenticator, req *http.Request, body, sent []byte) int {
	t.Helper()
	if err := a.Apply(context.Background(), req, body); err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(bytes.NewReader(sent))
	req.ContentLength = int64(len(sent))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHMACSignatureVerifiedByPartner(t *testing.T) {
	const secret = "hmac-Secret-abc"
	ts := httptest.NewServer(hmacVerifier(secret, sha256.New, hex.DecodeString, ""))
	defer ts.Close()
	clk := newFakeClock(time.Unix(1_700_000_000, 0))
	a, err := auth.New(auth.Config{Type: "hmac", Secret: secret}, auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"email":"a@b.c"}`)
	newReq := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/leads%2Fcheck?x=1", nil)
		return r
	}
	if s := doSigned(t, a, newReq(), body, body); s != http.StatusOK {
		t.Fatalf("valid request: %d", s)
	}
	if s := doSigned(t, a, newReq(), body, []byte(`{"email":"evil@b.c"}`)); s != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d, want 401", s)
	}

	// A retry re-signs the same request with a new timestamp; both verify.
	req := newReq()
	if s := doSigned(t, a, req, body, body); s != http.StatusOK {
		t.Fatalf("first try: %d", s)
	}
	ts1, sig1 := req.Header.Get("X-Timestamp"), req.Header.Get("X-Signature")
	clk.Advance(3 * time.Second)
	if s := doSigned(t, a, req, body, body); s != http.StatusOK {
		t.Fatalf("retry: %d", s)
	}
	ts2, sig2 := req.Header.Get("X-Timestamp"), req.Header.Get("X-Signature")
	if ts1 == ts2 || sig1 == sig2 {
		t.Fatalf("retry not re-signed: %s/%s vs %s/%s", ts1, sig1, ts2, sig2)
	}
	if ts2 != strconv.FormatInt(1_700_000_003, 10) || len(req.Header.Values("X-Signature")) != 1 {
		t.Fatalf("timestamp %s, signatures %v", ts2, req.Header.Values("X-Signature"))
	}
}

func TestHMACSHA512Base64Prefix(t *testing.T) {
	const secret = "another-Secret"
	ts := httptest.NewServer(hmacVerifier(secret, sha512.New, base64.StdEncoding.DecodeString, "sha512="))
	defer ts.Close()
	a, err := auth.New(auth.Config{Type: "hmac", Secret: secret, Algorithm: "sha512", Encoding: "base64", Prefix: "sha512="})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("a=1&b=2")
	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/x", nil)
	if s := doSigned(t, a, req, body, body); s != http.StatusOK {
		t.Fatalf("status %d", s)
	}
	req2, _ := http.NewRequest(http.MethodPut, ts.URL+"/x", nil)
	if s := doSigned(t, a, req2, body, []byte("a=1&b=3")); s != http.StatusUnauthorized {
		t.Fatalf("tampered: %d", s)
	}
}

func TestHMACCustomMessageHeadersAndFormats(t *testing.T) {
	clk := newFakeClock(time.UnixMilli(1_700_000_000_123))
	a, err := auth.New(auth.Config{
		Type:            "hmac",
		Secret:          "k",
		Message:         `{{.Method}}\n{{.Path}}?{{.Query}}\n{{index .Headers "Content-Type"}}\n{{.Timestamp}}\n{{.Body}}`,
		SignedHeaders:   []string{"content-type"},
		SignatureHeader: "X-Sig",
		TimestampHeader: "X-Time",
		TimestampFormat: "unix_ms",
	}, auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://api.example/a/b?q=1&r=2", nil)
	req.Header.Set("Content-Type", "application/json")
	if err := a.Apply(context.Background(), req, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	msg := "POST\\n/a/b?q=1&r=2\\napplication/json\\n1700000000123\\n{}" // template text has literal \n
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte(msg))
	if got, want := req.Header.Get("X-Sig"), hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if req.Header.Get("X-Time") != "1700000000123" {
		t.Fatalf("timestamp %q", req.Header.Get("X-Time"))
	}

	b, err := auth.New(auth.Config{Type: "hmac", Secret: "k", TimestampFormat: "rfc3339"}, auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Apply(context.Background(), req, nil)
	if got := req.Header.Get("X-Timestamp"); got != "2023-11-14T22:13:20Z" {
		t.Fatalf("rfc3339 timestamp %q", got)
	}
}

func TestHMACTemplateErrorsAtNew(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"{{.Method", "hmac message"},
		{"{{.Metod}}", "Metod"},
		{`{{.Headers.Foo}}`, "signed_headers"},
	} {
		_, err := auth.New(auth.Config{Type: "hmac", Secret: "topsecret", Message: tc.msg})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("Message %q: err = %v", tc.msg, err)
		}
	}
}
