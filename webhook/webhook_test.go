package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// mustNew builds a verifier or fails the test.
func mustNew(t testing.TB, cfg Config, now func() time.Time) *Verifier {
	t.Helper()
	v, err := New(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signed returns headers for body signed by cfg at unix second ts.
func signed(t testing.TB, cfg Config, body, id string, ts int64) http.Header {
	t.Helper()
	h, err := mustNew(t, cfg, nil).Sign([]byte(body), id, time.Unix(ts, 0))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// with returns a copy of h with name set to value ("" deletes it).
func with(h http.Header, name, value string) http.Header {
	c := h.Clone()
	if value == "" {
		c.Del(name)
	} else {
		c.Set(name, value)
	}
	return c
}

const now0 = int64(1_800_000_000)

func TestRejects(t *testing.T) {
	std := Config{Preset: PresetStandard, Secrets: []string{stdSecret}}
	gh := Config{Preset: PresetGitHub, Secrets: []string{ghSecret}}
	st := Config{Preset: PresetStripe, Secrets: []string{stripeSecret}}
	seed := Config{Preset: PresetActuallyCare, Secrets: []string{seedSecret}}
	gen := Config{Preset: PresetHMAC, Secrets: []string{"generic-secret"}, Header: "X-Sig", Prefix: "sha512=", Algorithm: "sha512",
		Encoding: "base64", Signed: "{id}.{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id"}
	body := `{"id":"evt_1","type":"lead.created"}`

	stdH := signed(t, std, body, "msg_1", now0)
	ghH := signed(t, gh, body, "", now0)
	stH := signed(t, st, body, "", now0)
	seedH := signed(t, seed, body, "", now0)
	genH := signed(t, gen, body, "id-1", now0)
	wrong := func(c Config, s string) Config { c.Secrets = []string{s}; return c }
	stdOther := "whsec_" + "c2VjcmV0LW51bWJlci10d28=" // base64("secret-number-two")

	tests := []struct {
		name string
		cfg  Config
		h    http.Header
		body string
		now  int64
		want error
	}{
		// Standard Webhooks.
		{"std ok", std, stdH, body, now0, nil},
		{"std tampered body", std, stdH, body + " ", now0, ErrBadSignature},
		{"std wrong secret", wrong(std, stdOther), stdH, body, now0, ErrBadSignature},
		{"std stale", std, stdH, body, now0 + 301, ErrStale},
		{"std at the tolerance edge", std, stdH, body, now0 + 300, nil},
		{"std future", std, stdH, body, now0 - 301, ErrStale},
		{"std no signature", std, with(stdH, "webhook-signature", ""), body, now0, ErrMissingSignature},
		{"std blank signature", std, with(stdH, "webhook-signature", "   "), body, now0, ErrMissingSignature},
		{"std no timestamp", std, with(stdH, "webhook-timestamp", ""), body, now0, ErrMissingSignature},
		{"std no id", std, with(stdH, "webhook-id", ""), body, now0, ErrMissingSignature},
		{"std changed id", std, with(stdH, "webhook-id", "msg_2"), body, now0, ErrBadSignature},
		{"std changed timestamp", std, with(stdH, "webhook-timestamp", fmt.Sprint(now0+1)), body, now0, ErrBadSignature},
		{"std timestamp not a number", std, with(stdH, "webhook-timestamp", "1800000000.5"), body, now0, ErrBadSignature},
		{"std negative timestamp", std, with(stdH, "webhook-timestamp", "-1800000000"), body, now0, ErrBadSignature},
		{"std only v1a", std, with(stdH, "webhook-signature", "v1a,aGVsbG8="), body, now0, ErrBadSignature},
		{"std partial v1", std, with(stdH, "webhook-signature", "v1,"), body, now0, ErrBadSignature},
		{"std too many signatures", std, with(stdH, "webhook-signature", strings.Repeat(stdWrongV1+" ", MaxSignatures)+stdH.Get("webhook-signature")), body, now0, ErrBadSignature},
		{"std as many signatures as allowed", std, with(stdH, "webhook-signature", strings.Repeat(stdWrongV1+" ", MaxSignatures-1)+stdH.Get("webhook-signature")), body, now0, nil},
		{"std v1 not base64", std, with(stdH, "webhook-signature", "v1,!!!"), body, now0, ErrBadSignature},
		// A valid signature replayed under svix-* headers to a standard hook is unsigned.
		{"std svix headers", std, hdr("svix-id", "msg_1", "svix-timestamp", fmt.Sprint(now0), "svix-signature", stdH.Get("webhook-signature")), body, now0, ErrMissingSignature},

		// GitHub.
		{"github ok", gh, ghH, body, now0, nil},
		{"github ok long after (no timestamp)", gh, ghH, body, now0 + 86400*365, nil},
		{"github tampered body", gh, ghH, strings.Replace(body, "evt_1", "evt_2", 1), now0, ErrBadSignature},
		{"github wrong secret", wrong(gh, "not it"), ghH, body, now0, ErrBadSignature},
		{"github no header", gh, with(ghH, "X-Hub-Signature-256", ""), body, now0, ErrMissingSignature},
		{"github sha1 header only", gh, hdr("X-Hub-Signature", "sha1="+strings.Repeat("0", 40)), body, now0, ErrMissingSignature},
		{"github no prefix", gh, with(ghH, "X-Hub-Signature-256", strings.TrimPrefix(ghH.Get("X-Hub-Signature-256"), "sha256=")), body, now0, ErrBadSignature},
		{"github not hex", gh, with(ghH, "X-Hub-Signature-256", "sha256=zz"), body, now0, ErrBadSignature},
		{"github truncated", gh, with(ghH, "X-Hub-Signature-256", ghH.Get("X-Hub-Signature-256")[:20]), body, now0, ErrBadSignature},

		// Stripe.
		{"stripe ok", st, stH, body, now0, nil},
		{"stripe tampered body", st, stH, body[1:], now0, ErrBadSignature},
		{"stripe wrong secret", wrong(st, "whsec_other"), stH, body, now0, ErrBadSignature},
		{"stripe stale", st, stH, body, now0 + 301, ErrStale},
		{"stripe future", st, stH, body, now0 - 301, ErrStale},
		{"stripe no header", st, http.Header{}, body, now0, ErrMissingSignature},
		{"stripe no t", st, hdr("Stripe-Signature", strings.Replace(stH.Get("Stripe-Signature"), "t=", "x=", 1)), body, now0, ErrBadSignature},
		{"stripe changed t", st, hdr("Stripe-Signature", strings.Replace(stH.Get("Stripe-Signature"), "t=18", "t=17", 1)), body, now0, ErrBadSignature},
		{"stripe two t", st, hdr("Stripe-Signature", stH.Get("Stripe-Signature")+",t=1"), body, now0, ErrBadSignature},
		{"stripe only v0", st, hdr("Stripe-Signature", strings.Replace(stH.Get("Stripe-Signature"), "v1=", "v0=", 1)), body, now0, ErrBadSignature},
		{"stripe too many signatures", st, hdr("Stripe-Signature", stH.Get("Stripe-Signature")+strings.Repeat(",v1=00", MaxSignatures)), body, now0, ErrBadSignature},
		{"stripe garbage", st, hdr("Stripe-Signature", ",,,=,t,v1"), body, now0, ErrBadSignature},

		// Seed 000.
		{"seed ok", seed, seedH, body, now0, nil},
		{"seed tampered body", seed, seedH, strings.ToUpper(body), now0, ErrBadSignature},
		{"seed wrong secret", wrong(seed, "other"), seedH, body, now0, ErrBadSignature},
		{"seed no header", seed, http.Header{}, body, now0, ErrMissingSignature},
		{"seed sha256= prefix is not the seed's format", seed, with(seedH, "X-Webhook-Signature", "sha256="+seedH.Get("X-Webhook-Signature")), body, now0, ErrBadSignature},

		// Generic.
		{"hmac ok", gen, genH, body, now0, nil},
		{"hmac tampered body", gen, genH, body + "\n", now0, ErrBadSignature},
		{"hmac wrong secret", wrong(gen, "x"), genH, body, now0, ErrBadSignature},
		{"hmac stale", gen, genH, body, now0 + 301, ErrStale},
		{"hmac future", gen, genH, body, now0 - 301, ErrStale},
		{"hmac no signature", gen, with(genH, "X-Sig", ""), body, now0, ErrMissingSignature},
		{"hmac no timestamp", gen, with(genH, "X-Ts", ""), body, now0, ErrMissingSignature},
		{"hmac no id", gen, with(genH, "X-Id", ""), body, now0, ErrMissingSignature},
		{"hmac changed id", gen, with(genH, "X-Id", "id-2"), body, now0, ErrBadSignature},
		{"hmac wrong prefix", gen, with(genH, "X-Sig", "sha256="+strings.TrimPrefix(genH.Get("X-Sig"), "sha512=")), body, now0, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, tc.cfg, at(tc.now))
			_, err := v.Verify(tc.h, []byte(tc.body))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus() != http.StatusUnauthorized || HTTPStatus(err) != http.StatusUnauthorized {
				t.Fatalf("err %v does not map to 401", err)
			}
			for _, s := range tc.cfg.Secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains the secret", err)
				}
			}
			for _, vals := range tc.h {
				for _, val := range vals {
					if len(val) > 8 && strings.Contains(err.Error(), val) {
						t.Fatalf("error %q echoes a header value", err)
					}
				}
			}
		})
	}
}

// A rotation lists the new secret first and keeps the old one; deliveries
// signed with either verify, and Event.Secret says which.
func TestRotation(t *testing.T) {
	body := `{"type":"x"}`
	for _, tc := range []struct {
		preset   string
		old, new string
	}{
		{PresetStandard, stdSecret, "whsec_c2VjcmV0LW51bWJlci10d28="},
		{PresetSvix, stdSecret, "whsec_c2VjcmV0LW51bWJlci10d28="},
		{PresetGitHub, "old", "new"},
		{PresetStripe, stripeSecret, stripeRolledSecret},
		{PresetActuallyCare, "old", "new"},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			oldOnly := Config{Preset: tc.preset, Secrets: []string{tc.old}}
			newOnly := Config{Preset: tc.preset, Secrets: []string{tc.new}}
			both := Config{Preset: tc.preset, Secrets: []string{tc.new, tc.old}}
			v := mustNew(t, both, at(now0))
			for _, c := range []struct {
				from   Config
				secret int
			}{{newOnly, 0}, {oldOnly, 1}, {both, 0}} {
				ev, err := v.Verify(signed(t, c.from, body, "msg_1", now0), []byte(body))
				if err != nil {
					t.Fatalf("signed with %d secret(s): %v", len(c.from.Secrets), err)
				}
				if ev.Secret != c.secret {
					t.Fatalf("Event.Secret = %d, want %d", ev.Secret, c.secret)
				}
			}
			// Retired: a verifier with only the new secret refuses the old one.
			if _, err := mustNew(t, newOnly, at(now0)).Verify(signed(t, oldOnly, body, "msg_1", now0), []byte(body)); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("retired secret: err = %v", err)
			}
		})
	}
}

func TestSenderSignsWithEverySecret(t *testing.T) {
	cfg := Config{Preset: PresetStandard, Secrets: []string{"whsec_c2VjcmV0LW51bWJlci10d28=", stdSecret}}
	h := signed(t, cfg, stdBody, stdID, stdTS)
	sigs := strings.Fields(h.Get("webhook-signature"))
	if len(sigs) != 2 || sigs[1] != stdSigHdr {
		t.Fatalf("webhook-signature = %q, want two entries ending with the published one", h.Get("webhook-signature"))
	}
	if h.Get("webhook-id") != stdID || h.Get("webhook-timestamp") != "1614265330" {
		t.Fatalf("headers = %v", h)
	}
}

func TestTolerance(t *testing.T) {
	cfg := Config{Preset: PresetStripe, Secrets: []string{stripeSecret}, Tolerance: 10 * time.Second}
	h := signed(t, cfg, "{}", "", now0)
	for _, c := range []struct {
		now  int64
		want error
	}{{now0, nil}, {now0 + 10, nil}, {now0 + 11, ErrStale}, {now0 - 10, nil}, {now0 - 11, ErrStale}} {
		_, err := mustNew(t, cfg, at(c.now)).Verify(h, []byte("{}"))
		if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("now=%+d: err = %v, want %v", c.now-now0, err, c.want)
		}
	}
	if got := mustNew(t, cfg, nil).Tolerance(); got != 10*time.Second {
		t.Errorf("Tolerance() = %v", got)
	}
	if got := mustNew(t, Config{Preset: PresetSvix, Secrets: []string{stdSecret}}, nil).Tolerance(); got != DefaultTolerance {
		t.Errorf("default Tolerance() = %v", got)
	}
	if got := mustNew(t, Config{Preset: PresetGitHub, Secrets: []string{"s"}}, nil).Tolerance(); got != 0 {
		t.Errorf("github Tolerance() = %v, want 0", got)
	}
	// A timestamp so far off that the difference overflows a Duration is stale, not accepted.
	v := mustNew(t, Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, at(now0))
	for _, ts := range []int64{0, 999_999_999_999_999_999} {
		h := signed(t, Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, "{}", "m", ts)
		if _, err := v.Verify(h, []byte("{}")); !errors.Is(err, ErrStale) {
			t.Errorf("ts=%d: err = %v, want ErrStale", ts, err)
		}
	}
}

func TestEventFields(t *testing.T) {
	body := `{"id":"evt_9","type":"invoice.paid","event":"lead.updated"}`
	for _, c := range []struct {
		cfg      Config
		id       string
		wantID   string
		wantType string
	}{
		{Config{Preset: PresetStripe, Secrets: []string{"s"}}, "", "evt_9", "invoice.paid"},
		{Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, "msg_9", "msg_9", "invoice.paid"},
		{Config{Preset: PresetActuallyCare, Secrets: []string{"s"}}, "", "", "lead.updated"},
		{Config{Preset: PresetGitHub, Secrets: []string{"s"}}, "guid-9", "guid-9", ""},
		{Config{Preset: PresetHMAC, Secrets: []string{"s"}, Header: "X-Sig", IDHeader: "X-Delivery"}, "d-9", "d-9", ""},
	} {
		ev, err := mustNew(t, c.cfg, at(now0)).Verify(signed(t, c.cfg, body, c.id, now0), []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", c.cfg.Preset, err)
		}
		if ev.ID != c.wantID || ev.Type != c.wantType {
			t.Errorf("%s: ID, Type = %q, %q; want %q, %q", c.cfg.Preset, ev.ID, ev.Type, c.wantID, c.wantType)
		}
	}
	// A body that is not a JSON object still verifies; it just names nothing.
	cfg := Config{Preset: PresetStripe, Secrets: []string{"s"}}
	for _, b := range []string{"", "[1,2]", `{"id":5}`, "not json"} {
		ev, err := mustNew(t, cfg, at(now0)).Verify(signed(t, cfg, b, "", now0), []byte(b))
		if err != nil || ev.ID != "" || ev.Type != "" {
			t.Errorf("body %q: event %+v, err %v", b, ev, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	const secret = "super-secret-value"
	ok := func(c Config) Config {
		if c.Secrets == nil {
			c.Secrets = []string{secret}
		}
		return c
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{ok(Config{}), "preset is required"},
		{ok(Config{Preset: "gitlab"}), `unknown preset "gitlab"`},
		{Config{Preset: PresetGitHub}, "at least one secret"},
		{Config{Preset: PresetGitHub, Secrets: []string{secret, ""}}, "secret 2: is empty"},
		{Config{Preset: PresetGitHub, Secrets: make([]string, MaxSecrets+1)}, "at most 10"},
		{Config{Preset: PresetGitHub, Secrets: []string{secret + "\n"}}, "secret 1: starts or ends with white space"},
		{Config{Preset: PresetStandard, Secrets: []string{"whsec_" + secret + "!"}}, "secret 1: is not base64"},
		{Config{Preset: PresetStandard, Secrets: []string{"whsec_"}}, "secret 1: is empty after"},
		{ok(Config{Preset: PresetGitHub, Header: "X-Sig"}), "header is only for preset hmac"},
		{ok(Config{Preset: PresetStripe, Signed: "{body}"}), "signed is only for preset hmac"},
		{ok(Config{Preset: PresetGitHub, Tolerance: time.Minute}), "signs no timestamp"},
		{ok(Config{Preset: PresetStripe, Tolerance: -time.Second}), "negative"},
		{ok(Config{Preset: PresetHMAC}), "needs header"},
		{ok(Config{Preset: PresetHMAC, Header: "X Sig"}), "not a valid header name"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", TimestampHeader: "x-sig", Signed: "{timestamp}.{body}"}), "name the same header"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Algorithm: "md5"}), `algorithm "md5"`},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Encoding: "base32"}), `encoding "base32"`},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Prefix: "a\nb"}), "control character"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{timestamp}"}), "must include {body}"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{ts}.{body}"}), "unknown placeholder {ts}"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{body"}), "unclosed"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{timestamp}{body}", TimestampHeader: "X-Ts"}), "two placeholders in a row"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{timestamp}.{body}"}), "timestamp_header is not set"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", TimestampHeader: "X-Ts"}), "does not use {timestamp}"},
		{ok(Config{Preset: PresetHMAC, Header: "X-Sig", Signed: "{id}.{body}"}), "id_header is not set"},
	} {
		_, err := New(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v) = %v, want an error containing %q", c.cfg, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains the secret", err)
		}
	}
}

func TestCompileSigned(t *testing.T) {
	v := mustNew(t, Config{Preset: PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig", Signed: "{{v1}:{timestamp}:{id}:{body}}",
		TimestampHeader: "X-Ts", IDHeader: "X-Id"}, nil)
	var b strings.Builder
	v.writeSigned(hashWriter{&b}, []byte("B"), "T", "I")
	if got := b.String(); got != "{v1}:T:I:B}" {
		t.Fatalf("signed content = %q", got)
	}
}

// hashWriter records what writeSigned feeds the MAC.
type hashWriter struct{ b *strings.Builder }

func (w hashWriter) Write(p []byte) (int, error) { return w.b.Write(p) }
func (hashWriter) Sum(b []byte) []byte           { return b }
func (hashWriter) Reset()                        {}
func (hashWriter) Size() int                     { return 0 }
func (hashWriter) BlockSize() int                { return 1 }

func TestSignErrors(t *testing.T) {
	std := mustNew(t, Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, nil)
	if _, err := std.Sign([]byte("{}"), "", time.Time{}); err == nil {
		t.Error("standard-webhooks Sign without id: no error")
	}
	if _, err := std.Sign([]byte("{}"), "a\r\nX-Evil: 1", time.Time{}); err == nil {
		t.Error("Sign with CR/LF in id: no error")
	}
	if _, err := std.Sign([]byte("{}"), "m", time.Unix(-1, 0)); err == nil {
		t.Error("Sign before 1970: no error")
	}
	// A zero time means the verifier's clock.
	v := mustNew(t, Config{Preset: PresetStripe, Secrets: []string{"s"}}, at(now0))
	h, err := v.Sign([]byte("{}"), "", time.Time{})
	if err != nil || !strings.HasPrefix(h.Get("Stripe-Signature"), fmt.Sprintf("t=%d,", now0)) {
		t.Fatalf("Sign at the clock: %v, %v", h, err)
	}
}

func TestEventKeyAndDedupeKey(t *testing.T) {
	if k := (Event{ID: "evt_1", IDSigned: true, Digest: "ab"}).Key("lead.created", "2026-01-01"); k != "id:evt_1" {
		t.Errorf("Key with a signed ID = %q", k)
	}
	// an unsigned ID never keys: the fallback parts, else the digest
	if k := (Event{ID: "evt_1", Digest: "ab"}).Key("lead.created", "2026-01-01"); k != "fb:12:lead.created:10:2026-01-01" {
		t.Errorf("Key with an unsigned ID and fallback = %q", k)
	}
	if k := (Event{ID: "evt_1", Digest: "ab"}).Key("", ""); k != "sig:ab" {
		t.Errorf("Key with an unsigned ID = %q", k)
	}
	if k := (Event{ID: "evt_1"}).Key(); k != "" {
		t.Errorf("Key with nothing signed = %q", k)
	}
	if k := (Event{}).Key(); k != "" {
		t.Errorf("Key without anything = %q", k)
	}
	if k := (Event{}).Key("", ""); k != "" {
		t.Errorf("Key with empty fallback = %q", k)
	}
	a := (Event{}).Key("lead.created", "2026-11-30T12:00:00Z")
	if a == "" || a == (Event{}).Key("lead.created2026-11-30T12:00:00Z") ||
		(Event{}).Key("a.b", "c") == (Event{}).Key("a", "b.c") ||
		(Event{}).Key("a:1:b") == (Event{}).Key("a", "b") ||
		(Event{}).Key("x") == (Event{ID: "x", IDSigned: true}).Key() ||
		(Event{Digest: "x"}).Key() == (Event{ID: "x", IDSigned: true}).Key() {
		t.Error("different fallbacks give the same key")
	}

	d := DedupeKey("hooks/leads", a)
	if len(d) != DedupeKeyLen || strings.Trim(d, "0123456789abcdef") != "" {
		t.Errorf("DedupeKey = %q, want %d lower-case hex characters", d, DedupeKeyLen)
	}
	if d != DedupeKey("hooks/leads", a) {
		t.Error("DedupeKey is not deterministic")
	}
	if d == DedupeKey("hooks/other", a) || DedupeKey("a", "bc") == DedupeKey("ab", "c") {
		t.Error("DedupeKey does not keep scopes apart")
	}
	if len(DedupeKey("", strings.Repeat("x", 1<<16))) != DedupeKeyLen {
		t.Error("DedupeKey length depends on the key")
	}
}

func TestConfigStringMasksSecrets(t *testing.T) {
	cfg := Config{Preset: PresetGitHub, Secrets: []string{"hunter2-very-secret"}}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg), string(js), string(ys)} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "github") {
			t.Errorf("formatted Config = %q", s)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	if HTTPStatus(nil) != http.StatusOK || HTTPStatus(errors.New("x")) != http.StatusInternalServerError ||
		HTTPStatus(fmt.Errorf("wrapped: %w", fail(ErrStale, "d"))) != http.StatusUnauthorized {
		t.Fatal("HTTPStatus mapping")
	}
}

// Config is written in the operator's YAML with these keys.
func TestConfigFromYAML(t *testing.T) {
	var cfg Config
	err := yaml.Unmarshal([]byte(`
preset: hmac
secrets: [new-secret, old-secret]
header: X-Slack-Signature
prefix: v0=
algorithm: sha256
encoding: hex
signed: "v0:{timestamp}:{body}"
timestamp_header: X-Slack-Request-Timestamp
id_header: X-Request-Id
tolerance: 2m
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Preset: PresetHMAC, Secrets: []string{"new-secret", "old-secret"}, Header: "X-Slack-Signature", Prefix: "v0=",
		Algorithm: "sha256", Encoding: "hex", Signed: "v0:{timestamp}:{body}", TimestampHeader: "X-Slack-Request-Timestamp",
		IDHeader: "X-Request-Id", Tolerance: 2 * time.Minute}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("decoded %#v", cfg)
	}
	if _, err := New(cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// One Verifier serves many requests at once (run with -race).
func TestConcurrentVerify(t *testing.T) {
	cfg := Config{Preset: PresetStandard, Secrets: []string{"whsec_c2VjcmV0LW51bWJlci10d28=", stdSecret}}
	v := mustNew(t, cfg, at(now0))
	sender := mustNew(t, cfg, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				body := fmt.Sprintf(`{"n":%d}`, i*100+j)
				h, err := sender.Sign([]byte(body), fmt.Sprint("msg_", i, j), time.Unix(now0, 0))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(h, []byte(body)); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(h, []byte(body+"x")); !errors.Is(err, ErrBadSignature) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
