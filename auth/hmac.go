package auth

import (
	"cmp"
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
	"text/template"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/plumbhq/plumb/steps"
)

// DefaultHMACMessage is the message template used when Config.Message is
// empty: method + path + timestamp + body.
const DefaultHMACMessage = steps.DefaultHMACMessage

// HMACMessage is the data the hmac Message template is executed with.
type HMACMessage = steps.HMACMessage

type hmacSigner struct {
	secret    []byte
	newHash   func() hash.Hash
	encode    func([]byte) string
	sigHeader string
	tsHeader  string
	tsFormat  steps.HMACTimestampFormat
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
		prefix:    cfg.Prefix,
		now:       o.now,
	}
	switch cmp.Or(steps.HMACAlgorithm(cfg.Algorithm), steps.HMACAlgorithms.Default) {
	case steps.HMACSHA256:
		h.newHash = sha256.New
	case steps.HMACSHA512:
		h.newHash = sha512.New
	default:
		return nil, fmt.Errorf("auth: hmac algorithm %q is not %s", cfg.Algorithm, steps.HMACAlgorithms.Hint())
	}
	switch cmp.Or(steps.HMACEncoding(cfg.Encoding), steps.HMACEncodings.Default) {
	case steps.HMACHex:
		h.encode = hex.EncodeToString
	case steps.HMACBase64:
		h.encode = base64.StdEncoding.EncodeToString
	case steps.HMACBase64URL:
		h.encode = base64.RawURLEncoding.EncodeToString
	default:
		return nil, fmt.Errorf("auth: hmac encoding %q is not %s", cfg.Encoding, steps.HMACEncodings.Hint())
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
	h.tsFormat = cmp.Or(steps.HMACTimestampFormat(cfg.TimestampFormat), steps.HMACTimestampFormats.Default)
	if !steps.HMACTimestampFormats.Has(h.tsFormat) {
		return nil, fmt.Errorf("auth: hmac timestamp_format %q is not %s", cfg.TimestampFormat, steps.HMACTimestampFormats.Hint())
	}
	if !httpguts.ValidHeaderFieldValue(h.prefix) {
		return nil, errors.New("auth: hmac prefix contains control characters")
	}
	sample := map[string]bool{}
	for _, name := range cfg.SignedHeaders {
		if err := checkHeaderName("hmac", "signed_headers entry", name); err != nil {
			return nil, err
		}
		c := http.CanonicalHeaderKey(name)
		if _, dup := sample[c]; dup {
			continue
		}
		sample[c] = true
		h.signed = append(h.signed, c)
	}
	t, err := steps.ParseHMACMessage(cfg.Message, h.signed)
	if err != nil {
		return nil, fmt.Errorf("auth: hmac message: %v", err)
	}
	h.tmpl = t
	return h, nil
}

func (h *hmacSigner) timestamp() string {
	now := h.now()
	switch h.tsFormat {
	case steps.TimestampUnixMS:
		return strconv.FormatInt(now.UnixMilli(), 10)
	case steps.TimestampRFC3339:
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
