package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"

	"golang.org/x/net/http/httpguts"
)

// DefaultHMACMessage is the message template used when Config.Message is
// empty: method + path + timestamp + body.
const DefaultHMACMessage = "{{.Method}}{{.Path}}{{.Timestamp}}{{.Body}}"

// HMACMessage is the data the hmac Message template is executed with.
type HMACMessage struct {
	// Method is the request method, e.g. "POST".
	Method string
	// Path is the escaped path as sent on the wire, e.g. "/v1/a%20b".
	Path string
	// Query is the raw query string without '?', as sent.
	Query string
	// Timestamp is the value sent in the timestamp header.
	Timestamp string
	// Body is the request body.
	Body string
	// Headers maps each canonical SignedHeaders name to the request's value
	// (empty when absent).
	Headers map[string]string
}

type hmacSigner struct {
	secret    []byte
	newHash   func() hash.Hash
	encode    func([]byte) string
	sigHeader string
	tsHeader  string
	tsFormat  string
	prefix    string
	tmpl      *template.Template
	signed    []string // canonical names
	now       func() time.Time
}

func newHMAC(cfg Config, o options) (*hmacSigner, error) {
	if cfg.Secret == "" {
		return nil, errors.New("auth: hmac needs secret")
	}
	h := &hmacSigner{
		secret:    []byte(cfg.Secret),
		sigHeader: cfg.SignatureHeader,
		tsHeader:  cfg.TimestampHeader,
		tsFormat:  cfg.TimestampFormat,
		prefix:    cfg.Prefix,
		now:       o.now,
	}
	switch strings.ToLower(cfg.Algorithm) {
	case "", "sha256":
		h.newHash = sha256.New
	case "sha512":
		h.newHash = sha512.New
	default:
		return nil, fmt.Errorf("auth: hmac algorithm must be \"sha256\" or \"sha512\", got %q", cfg.Algorithm)
	}
	switch cfg.Encoding {
	case "", "hex":
		h.encode = hex.EncodeToString
	case "base64":
		h.encode = base64.StdEncoding.EncodeToString
	case "base64url":
		h.encode = base64.RawURLEncoding.EncodeToString
	default:
		return nil, fmt.Errorf("auth: hmac encoding must be \"hex\", \"base64\" or \"base64url\", got %q", cfg.Encoding)
	}
	if h.sigHeader == "" {
		h.sigHeader = "X-Signature"
	}
	if h.tsHeader == "" {
		h.tsHeader = "X-Timestamp"
	}
	if err := checkHeaderName("hmac", "signature_header", h.sigHeader); err != nil {
		return nil, err
	}
	if err := checkHeaderName("hmac", "timestamp_header", h.tsHeader); err != nil {
		return nil, err
	}
	if http.CanonicalHeaderKey(h.sigHeader) == http.CanonicalHeaderKey(h.tsHeader) {
		return nil, errors.New("auth: hmac signature_header and timestamp_header must differ")
	}
	switch h.tsFormat {
	case "":
		h.tsFormat = "unix"
	case "unix", "unix_ms", "rfc3339":
	default:
		return nil, fmt.Errorf("auth: hmac timestamp_format must be \"unix\", \"unix_ms\" or \"rfc3339\", got %q", cfg.TimestampFormat)
	}
	if !httpguts.ValidHeaderFieldValue(h.prefix) {
		return nil, errors.New("auth: hmac prefix contains control characters")
	}
	sample := map[string]string{}
	for _, name := range cfg.SignedHeaders {
		if err := checkHeaderName("hmac", "signed_headers entry", name); err != nil {
			return nil, err
		}
		c := http.CanonicalHeaderKey(name)
		if _, dup := sample[c]; dup {
			continue
		}
		sample[c] = ""
		h.signed = append(h.signed, c)
	}
	msg := cfg.Message
	if msg == "" {
		msg = DefaultHMACMessage
	}
	t, err := template.New("hmac message").Option("missingkey=error").Parse(msg)
	if err != nil {
		return nil, fmt.Errorf("auth: hmac message: %v", err)
	}
	// Execute once against empty data so misspelt fields (.Metod) and
	// headers missing from signed_headers fail now, not per request.
	if err := t.Execute(discard{}, HMACMessage{Headers: sample}); err != nil {
		return nil, fmt.Errorf("auth: hmac message: %v (headers must be listed in signed_headers)", err)
	}
	h.tmpl = t
	return h, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (h *hmacSigner) timestamp() string {
	now := h.now()
	switch h.tsFormat {
	case "unix_ms":
		return strconv.FormatInt(now.UnixMilli(), 10)
	case "rfc3339":
		return now.UTC().Format(time.RFC3339)
	default:
		return strconv.FormatInt(now.Unix(), 10)
	}
}

// Apply implements Authenticator: it stamps the request with the current
// time and signs it, replacing an earlier signature (retries are re-signed).
func (h *hmacSigner) Apply(_ context.Context, req *http.Request, body []byte) error {
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	data := HMACMessage{
		Method:    req.Method,
		Path:      req.URL.EscapedPath(),
		Query:     req.URL.RawQuery,
		Timestamp: h.timestamp(),
		Body:      string(body),
		Headers:   make(map[string]string, len(h.signed)),
	}
	if data.Method == "" {
		data.Method = http.MethodGet
	}
	// The timestamp header is set first so it can itself be signed.
	req.Header.Set(h.tsHeader, data.Timestamp)
	req.Header.Del(h.sigHeader)
	for _, name := range h.signed {
		v := req.Header.Get(name)
		if name == "Host" && v == "" {
			v = req.Host
			if v == "" {
				v = req.URL.Host
			}
		}
		data.Headers[name] = v
	}
	mac := hmac.New(h.newHash, h.secret)
	if err := h.tmpl.Execute(mac, data); err != nil {
		return fmt.Errorf("auth: hmac message: %v", err)
	}
	req.Header.Set(h.sigHeader, h.prefix+h.encode(mac.Sum(nil)))
	return nil
}
