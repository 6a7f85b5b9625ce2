package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/webhook"
)

// KindCallback is the queue job kind of a pending callback: the queue
// keeps it durably, retries it with backoff and dead-letters it after its
// last delivery.
const KindCallback queue.Kind = "callback"

// Callback events (the "type" of a callback's body).
const (
	EventResult = "lead.result"
	EventBatch  = "batch.done"
)

// CallbackJob is a callback as the queue stores it.
type CallbackJob struct {
	// ID is the webhook-id: the same for every attempt and every copy, so
	// the receiver can drop duplicates.
	ID string `json:"id"`
	// Integration whose callback: secret signs it.
	Integration string `json:"integration"`
	URL         string `json:"url"`
	// Untrusted marks a URL that came from an API request: its address is
	// checked again when it is dialled.
	Untrusted bool            `json:"untrusted,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// ResultCallbackID and BatchCallbackID are the webhook-ids of a lead's
// result and a batch's summary (valid queue job ids).
func ResultCallbackID(lead string) string { return "res_" + lead }
func BatchCallbackID(batch string) string { return "bat_" + batch }

// CallbackBody is the JSON a callback carries (Standard Webhooks'
// type/timestamp/data shape).
func CallbackBody(event string, at time.Time, data any) (json.RawMessage, error) {
	b, err := json.Marshal(map[string]any{"type": event, "timestamp": at.UTC().Format(time.RFC3339Nano), "data": data})
	if err != nil {
		return nil, fmt.Errorf("history: encoding a callback: %w", err)
	}
	return b, nil
}

// Job is the queue job of c.
func (c CallbackJob) Job() (queue.Job, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return queue.Job{}, fmt.Errorf("history: %w", err)
	}
	return queue.Job{ID: c.ID, Kind: KindCallback, Integration: c.Integration, Payload: b}, nil
}

// URLPolicy says which callback URLs an API request may name.
type URLPolicy struct {
	// Allow lists origins (https://host[:port]) every integration's
	// batches may name, besides the integration's callback.origins.
	Allow []string
	// AllowPrivate lets such URLs reach loopback, private, link-local and
	// other non-public addresses (off: refused, an SSRF guard).
	AllowPrivate bool
}

// origin is the scheme://host[:port] of u, lower-cased, default port
// dropped.
func origin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// Check refuses a callback URL from an API request unless its origin is
// one of origins (the integration's) or the policy's, and, unless the
// policy allows them, unless its host is a public address or name.
func (p URLPolicy) Check(raw string, origins []string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("callback_url must be an absolute http(s) URL without user info")
	}
	o := origin(u)
	allowed := false
	for _, a := range append(append([]string{}, origins...), p.Allow...) {
		if au, err := url.Parse(strings.TrimSuffix(a, "/")); err == nil && origin(au) == o {
			allowed = true
		}
	}
	if !allowed {
		return fmt.Errorf("callback_url's origin %s is not one the integration's callback.origins or the operator's --callback-allow names", o)
	}
	if p.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return errors.New("callback_url names a loopback host (refused unless the operator gives --callback-allow-private)")
	}
	if ip, err := netip.ParseAddr(host); err == nil && !public(ip) {
		return errors.New("callback_url names a private, loopback or link-local address (refused unless the operator gives --callback-allow-private)")
	}
	return nil
}

// public reports whether ip is a global unicast address that is not
// private (RFC 1918, RFC 4193), loopback, link-local or unspecified.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!(ip.Is4() && ip.As4()[0] == 100 && ip.As4()[1]&0xc0 == 64) // 100.64/10, carrier-grade NAT
}

// errPrivate: an untrusted callback URL resolved to a non-public address.
var errPrivate = errors.New("the callback URL resolved to a non-public address (refused: --callback-allow-private)")

// Sender posts callbacks.
type Sender struct {
	trusted, untrusted *http.Client
	now                func() time.Time
}

// NewSender returns a Sender. URLs from API requests are dialled only to
// public addresses unless p.AllowPrivate (the check is on the address
// dialled, after DNS, so a name that resolves to 127.0.0.1 is refused
// too). Redirects are not followed.
func NewSender(p URLPolicy, now func() time.Time) *Sender {
	if now == nil {
		now = time.Now
	}
	client := func(guard bool) *http.Client {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if guard {
			d.Control = func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil || !public(ap.Addr()) {
					return errPrivate
				}
				return nil
			}
		}
		tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
		return &http.Client{Transport: tr, Timeout: time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s := &Sender{trusted: client(false), untrusted: client(!p.AllowPrivate), now: now}
	return s
}

// Send posts one callback signed with secret (a Standard Webhooks key),
// returning the receiver's status; any answer but 2xx is an error.
func (s *Sender) Send(ctx context.Context, c CallbackJob, secret string) (int, error) {
	v, err := webhook.New(webhook.Config{Preset: webhook.PresetStandard, Secrets: []string{secret}}, s.now)
	if err != nil {
		return 0, errors.New("the callback secret is not a Standard Webhooks key (whsec_ and base64)")
	}
	h, err := v.Sign(c.Body, c.ID, s.now())
	if err != nil {
		return 0, fmt.Errorf("signing: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		return 0, errors.New("the callback URL does not make a request")
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "plumb-callback")
	client := s.trusted
	if c.Untrusted {
		client = s.untrusted
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, errPrivate) {
			return 0, errPrivate
		}
		return 0, fmt.Errorf("posting: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
