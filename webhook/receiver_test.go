package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

func hook(t *testing.T, cfg webhook.HookConfig) *webhook.Hook {
	t.Helper()
	h, err := webhook.NewHook(cfg, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func signedHeader(t *testing.T, h *webhook.Hook, body []byte, id string) http.Header {
	t.Helper()
	hdr, err := h.Verifier().Sign(body, id, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	return hdr
}

func TestReceiveKeys(t *testing.T) {
	ac := webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{"s3cret"}}
	body := []byte(`{"event":"lead.status_changed","timestamp":"2026-06-11T17:42:11.000Z","data":{"id":"a1","n":12345678901234567890}}`)
	other := []byte(`{"event":"lead.status_changed","timestamp":"2026-06-11T17:42:12.000Z","data":{"id":"a1"}}`)

	// seed 000's default: event + timestamp
	h := hook(t, webhook.HookConfig{Integration: "acare", Verify: ac})
	d, err := h.Receive(signedHeader(t, h, body, ""), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := h.Receive(signedHeader(t, h, body, ""), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	d3, err := h.Receive(signedHeader(t, h, other, ""), bytes.NewReader(other))
	if err != nil {
		t.Fatal(err)
	}
	if d.JobID != d2.JobID || d.JobID == d3.JobID || !strings.HasPrefix(d.JobID, webhook.JobPrefix) || d.Event.Type != "lead.status_changed" {
		t.Errorf("ids %s %s %s, type %q", d.JobID, d2.JobID, d3.JobID, d.Event.Type)
	}
	if !bytes.Equal(d.Body, body) || d.Lead["data"].(map[string]any)["n"].(interface{ String() string }).String() != "12345678901234567890" {
		t.Errorf("body or numbers changed: %s %v", d.Body, d.Lead)
	}

	// a declared key template; the same key in another integration is another id
	tpl := hook(t, webhook.HookConfig{Integration: "acare", Verify: ac, DedupeKey: "{{lead.data.id}}"})
	e1, _ := tpl.Receive(signedHeader(t, tpl, body, ""), bytes.NewReader(body))
	e2, _ := tpl.Receive(signedHeader(t, tpl, other, ""), bytes.NewReader(other))
	if e1 == nil || e2 == nil || e1.JobID != e2.JobID || e1.Key != "tpl:a1" {
		t.Fatalf("template key: %+v %+v", e1, e2)
	}
	tpl2 := hook(t, webhook.HookConfig{Integration: "other", Verify: ac, DedupeKey: "{{lead.data.id}}"})
	if e3, _ := tpl2.Receive(signedHeader(t, tpl2, body, ""), bytes.NewReader(body)); e3.JobID == e1.JobID {
		t.Error("two integrations share a dedupe id")
	}
	// a key that does not render: accepted, keyed as without a template
	// (so a replay of it is still recognised)
	miss := hook(t, webhook.HookConfig{Integration: "acare", Verify: ac, DedupeKey: "{{lead.nope}}"})
	m1, err := miss.Receive(signedHeader(t, miss, body, ""), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := miss.Receive(signedHeader(t, miss, body, ""), bytes.NewReader(body))
	m3, _ := miss.Receive(signedHeader(t, miss, other, ""), bytes.NewReader(other))
	if m1.Key != d.Key || m1.JobID != m2.JobID || m1.JobID != d.JobID || m3 == nil || m3.JobID == m1.JobID {
		t.Errorf("deliveries whose template renders nothing: %q %s %s %+v", m1.Key, m1.JobID, m2.JobID, m3)
	}

	// seed 000 without a timestamp (or an event): the digest of the body,
	// never half a pair, which would fold distinct events into one
	for _, pair := range [][2][]byte{
		{[]byte(`{"event":"lead.created","data":{"id":"a"}}`), []byte(`{"event":"lead.created","data":{"id":"b"}}`)},
		{[]byte(`{"timestamp":"2026-06-11T17:42:11Z","data":{"id":"a"}}`), []byte(`{"timestamp":"2026-06-11T17:42:11Z","data":{"id":"b"}}`)},
	} {
		a, errA := h.Receive(signedHeader(t, h, pair[0], ""), bytes.NewReader(pair[0]))
		b, errB := h.Receive(signedHeader(t, h, pair[1], ""), bytes.NewReader(pair[1]))
		a2, errA2 := h.Receive(signedHeader(t, h, pair[0], ""), bytes.NewReader(pair[0]))
		if err := errors.Join(errA, errB, errA2); err != nil || a.JobID == b.JobID || a.JobID != a2.JobID || !strings.HasPrefix(a.Key, "sig:") {
			t.Errorf("half a pair: %v %+v %+v", err, a, b)
		}
	}

	// Standard Webhooks: the webhook-id is the key
	std := hook(t, webhook.HookConfig{Integration: "std", Verify: webhook.Config{Preset: webhook.PresetStandard, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}})
	s1, err := std.Receive(signedHeader(t, std, body, "msg_1"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := std.Receive(signedHeader(t, std, other, "msg_1"), bytes.NewReader(other))
	if s1.Key != "id:msg_1" || s1.JobID != s2.JobID {
		t.Errorf("standard webhooks key %q", s1.Key)
	}

	// the lead of a delivery, with the meta field; a delivery read back
	// from storage (its body only) gives the same lead
	meta := hook(t, webhook.HookConfig{Integration: "acare", Verify: ac, Meta: "webhook"})
	stored := &webhook.Delivery{Event: d.Event, Body: d.Body, Received: d.Received}
	for _, dd := range []*webhook.Delivery{d, stored} {
		l, err := meta.Lead(dd)
		if err != nil || l["webhook"].(map[string]any)["type"] != "lead.status_changed" || l["event"] != "lead.status_changed" {
			t.Errorf("lead with meta %v, %v", l, err)
		}
		if _, ok := dd.Lead["webhook"]; ok {
			t.Errorf("Lead changed the delivery's own lead: %v", dd.Lead)
		}
	}
	var nilHook *webhook.Hook
	if l, err := nilHook.Lead(stored); err != nil || l["event"] != "lead.status_changed" || l["webhook"] != nil {
		t.Errorf("lead without a hook %v, %v", l, err)
	}
	if _, err := nilHook.Lead(&webhook.Delivery{Body: []byte("[1]")}); !errors.Is(err, webhook.ErrInvalidBody) {
		t.Errorf("a stored body that is not an object: %v", err)
	}
}

func TestReceiveRefusals(t *testing.T) {
	h := hook(t, webhook.HookConfig{Integration: "acare", MaxBytes: 64,
		Verify: webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{"s3cret"}}})
	body := []byte(`{"event":"x","timestamp":"t"}`)
	good := signedHeader(t, h, body, "")
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		body   string
		status int
		code   string
		is     error
	}{
		{"content type", http.Header{"Content-Type": {"text/plain"}, "X-Webhook-Signature": good["X-Webhook-Signature"]}, string(body), 415, "unsupported_media_type", webhook.ErrContentType},
		{"no content type", http.Header{"X-Webhook-Signature": good["X-Webhook-Signature"]}, string(body), 415, "unsupported_media_type", webhook.ErrContentType},
		{"compressed", http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}, "X-Webhook-Signature": good["X-Webhook-Signature"]}, string(body), 415, "unsupported_media_type", webhook.ErrContentType},
		{"too large", good, `{"event":"` + strings.Repeat("x", 64) + `"}`, 413, "body_too_large", webhook.ErrTooLarge},
		{"unsigned", http.Header{"Content-Type": {"application/json"}}, string(body), 401, "missing_signature", webhook.ErrMissingSignature},
		{"tampered", good, `{"event":"y","timestamp":"t"}`, 401, "bad_signature", webhook.ErrBadSignature},
		{"not json", signedHeader(t, h, []byte("nope"), ""), "nope", 400, "invalid_json", webhook.ErrInvalidBody},
		{"two values", signedHeader(t, h, []byte("{} {}"), ""), "{} {}", 400, "invalid_json", webhook.ErrInvalidBody},
		{"a stray bracket", signedHeader(t, h, []byte("{} ]"), ""), "{} ]", 400, "invalid_json", webhook.ErrInvalidBody},
		{"null", signedHeader(t, h, []byte("null"), ""), "null", 400, "invalid_json", webhook.ErrInvalidBody},
	} {
		d, err := h.Receive(tc.hdr, strings.NewReader(tc.body))
		if d != nil || !errors.Is(err, tc.is) || webhook.Status(err) != tc.status || webhook.Code(err) != tc.code {
			t.Errorf("%s: %v → %d %s", tc.name, err, webhook.Status(err), webhook.Code(err))
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error holds the secret", tc.name)
		}
	}
	if webhook.Status(nil) != 200 {
		t.Error("Status(nil)")
	}
	// the body is read as every lead is (engine.DecodeLead): a byte-order
	// mark allowed, numbers digit for digit
	bom := []byte("\xef\xbb\xbf" + `{"id":12345678901234567890}`)
	if d, err := h.Receive(signedHeader(t, h, bom, ""), bytes.NewReader(bom)); err != nil || d.Lead["id"] != json.Number("12345678901234567890") {
		t.Errorf("a body with a byte-order mark: %v, %v", d, err)
	}
	// +json types are JSON
	hdr := signedHeader(t, h, body, "")
	hdr.Set("Content-Type", "application/cloudevents+json")
	if _, err := h.Receive(hdr, bytes.NewReader(body)); err != nil {
		t.Errorf("+json: %v", err)
	}
}
