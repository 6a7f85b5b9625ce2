package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"
)

// Published (or independently produced) signatures. Each vector names where
// it comes from; none was produced by this package.
var (
	// Standard Webhooks: libraries/go/webhook_test.go, TestWebhookSign, in
	// github.com/standard-webhooks/standard-webhooks (commit b2fa7b87).
	stdSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stdID      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	stdTS      = int64(1614265330)
	stdBody    = `{"test": 2432232314}`
	stdSigHdr  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	stdWrongV1 = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=" // the same file's "invalid signature"

	// GitHub: docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries,
	// "Testing the webhook payload validation".
	ghSecret = "It's a Secret to Everybody"
	ghBody   = "Hello, World!"
	ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	// Stripe publishes no fixed (secret, payload, t) → v1 triple: its
	// libraries' tests sign at time.Now(). These were produced by stripe-go's
	// webhook.ComputeSignature (github.com/stripe/stripe-go, webhook/client.go,
	// commit a1e3932f) with stripe-go's test secret and its "rolled" variant,
	// the payload of stripe-go's tests without api_version, and the t of the
	// example header in Stripe's docs (docs.stripe.com/webhooks, "Verify
	// signatures manually"); cross-checked with Python's hmac module.
	stripeSecret       = "whsec_test_secret"
	stripeRolledSecret = "whsec_test_secret_rolled_key"
	stripeTS           = int64(1492774577)
	stripeBody         = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}"
	stripeV1           = "c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812"
	stripeRolledV1     = "58a4723fa0114d50bc17d58cedd6d02c4769c2b1ca4bf2ebfcb369803f6d94a3"

	// Seed 000 ("Handling Webhooks", Step 5) publishes the algorithm, not a
	// vector: this digest is the output of the seed's own Node.js code
	// (crypto.createHmac('sha256', SECRET).update(rawBody).digest('hex'),
	// Node 20) for this secret and body.
	seedSecret = "seed000-test-secret"
	seedBody   = `{"event":"lead.created","team_id":"team_1","timestamp":"2026-11-30T12:00:00.000Z","data":{"id":"a1b2c3d4"}}`
	seedSig    = "5711bf7983382731bdf098fb1371d2f63cefc3bc1a7aeab7c533d234893a2711"

	// Slack, through the generic preset: docs.slack.dev/authentication/verifying-requests-from-slack
	// (formerly api.slack.com/authentication/verifying-requests-from-slack), worked example.
	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	slackTS     = int64(1531420618)
	slackBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

	// HMAC primitive, through the generic preset with Signed "{body}":
	// RFC 2202 §3 test case 2 (HMAC-SHA-1) and RFC 4231 §4.3 test case 2
	// (HMAC-SHA-256, HMAC-SHA-512): key "Jefe", data "what do ya want for nothing?".
	rfcKey    = "Jefe"
	rfcData   = "what do ya want for nothing?"
	rfcSHA1   = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
	rfcSHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	rfcSHA512 = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
)

// at returns a clock stopped at unix second sec.
func at(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 0) } }

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// hexToB64 re-encodes a published hex digest, to test the other encodings
// against the same published value.
func hexToB64(t *testing.T, s string, enc *base64.Encoding) string {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString(b)
}

type vector struct {
	name string
	cfg  Config
	now  int64
	h    http.Header
	body string
	want Event
}

func vectors(t *testing.T) []vector {
	slackCfg := Config{Preset: PresetHMAC, Secrets: []string{slackSecret}, Header: "X-Slack-Signature", Prefix: "v0=",
		Signed: "v0:{timestamp}:{body}", TimestampHeader: "X-Slack-Request-Timestamp"}
	rfc := func(alg, enc string) Config {
		return Config{Preset: PresetHMAC, Secrets: []string{rfcKey}, Header: "X-Sig", Algorithm: alg, Encoding: enc}
	}
	return []vector{
		{
			name: "standard-webhooks",
			cfg:  Config{Preset: PresetStandard, Secrets: []string{stdSecret}},
			now:  stdTS + 10,
			h:    hdr("webhook-id", stdID, "webhook-timestamp", "1614265330", "webhook-signature", stdSigHdr),
			body: stdBody,
			want: Event{Preset: PresetStandard, ID: stdID, Timestamp: time.Unix(stdTS, 0)},
		},
		{
			name: "standard-webhooks secret without whsec_ prefix",
			cfg:  Config{Preset: PresetStandard, Secrets: []string{stdSecret[len("whsec_"):]}},
			now:  stdTS,
			h:    hdr("webhook-id", stdID, "webhook-timestamp", "1614265330", "webhook-signature", stdSigHdr),
			body: stdBody,
			want: Event{Preset: PresetStandard, ID: stdID, Timestamp: time.Unix(stdTS, 0)},
		},
		{
			// The library's "valid multi sig is valid" case: unknown versions
			// and wrong v1 entries around the good one.
			name: "standard-webhooks several signatures",
			cfg:  Config{Preset: PresetStandard, Secrets: []string{stdSecret}},
			now:  stdTS,
			h: hdr("webhook-id", stdID, "webhook-timestamp", "1614265330", "webhook-signature",
				stdWrongV1+" v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+stdSigHdr+" "+stdWrongV1),
			body: stdBody,
			want: Event{Preset: PresetStandard, ID: stdID, Timestamp: time.Unix(stdTS, 0)},
		},
		{
			name: "svix",
			cfg:  Config{Preset: PresetSvix, Secrets: []string{stdSecret}},
			now:  stdTS - 10,
			h:    hdr("svix-id", stdID, "svix-timestamp", "1614265330", "svix-signature", stdSigHdr),
			body: stdBody,
			want: Event{Preset: PresetSvix, ID: stdID, Timestamp: time.Unix(stdTS, 0)},
		},
		{
			name: "github",
			cfg:  Config{Preset: PresetGitHub, Secrets: []string{ghSecret}},
			h:    hdr("X-Hub-Signature-256", ghSig, "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event", "issues"),
			body: ghBody,
			want: Event{Preset: PresetGitHub, ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Type: "issues"},
		},
		{
			name: "stripe",
			cfg:  Config{Preset: PresetStripe, Secrets: []string{stripeSecret}},
			now:  stripeTS + 299,
			h:    hdr("Stripe-Signature", "t=1492774577,v1="+stripeV1),
			body: stripeBody,
			want: Event{Preset: PresetStripe, ID: "evt_test_webhook", Timestamp: time.Unix(stripeTS, 0)},
		},
		{
			// stripe-go's "headerWithRolledKey" and "bad_signature" cases: the
			// header carries both secrets' signatures plus junk and a v0.
			name: "stripe rolled secret, extra entries",
			cfg:  Config{Preset: PresetStripe, Secrets: []string{stripeRolledSecret}},
			now:  stripeTS,
			h:    hdr("Stripe-Signature", "t=1492774577,v1="+stripeV1+",v1="+stripeRolledV1+",v1=bad_signature,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"),
			body: stripeBody,
			want: Event{Preset: PresetStripe, ID: "evt_test_webhook", Timestamp: time.Unix(stripeTS, 0)},
		},
		{
			name: "seed 000",
			cfg:  Config{Preset: PresetActuallyCare, Secrets: []string{seedSecret}},
			h:    hdr("X-Webhook-Signature", seedSig),
			body: seedBody,
			want: Event{Preset: PresetActuallyCare, Type: "lead.created"},
		},
		{
			name: "hmac: slack",
			cfg:  slackCfg,
			now:  slackTS,
			h:    hdr("X-Slack-Signature", slackSig, "X-Slack-Request-Timestamp", "1531420618"),
			body: slackBody,
			want: Event{Preset: PresetHMAC, Timestamp: time.Unix(slackTS, 0)},
		},
		{name: "hmac: rfc 2202 sha1 hex", cfg: rfc("sha1", "hex"), h: hdr("X-Sig", rfcSHA1), body: rfcData, want: Event{Preset: PresetHMAC}},
		{name: "hmac: rfc 4231 sha256 hex", cfg: rfc("sha256", ""), h: hdr("X-Sig", rfcSHA256), body: rfcData, want: Event{Preset: PresetHMAC}},
		{name: "hmac: rfc 4231 sha512 hex upper-case", cfg: rfc("SHA512", "hex"), h: hdr("X-Sig", "164B7A7BFCF819E2E395FBE73B56E0A387BD64222E831FD610270CD7EA2505549758BF75C05A994A6D034F65F8F0E6FDCAEAB1A34D4A6B4B636E070A38BCE737"), body: rfcData, want: Event{Preset: PresetHMAC}},
		{name: "hmac: rfc 4231 sha256 base64", cfg: rfc("sha256", "base64"), h: hdr("X-Sig", hexToB64(t, rfcSHA256, base64.StdEncoding)), body: rfcData, want: Event{Preset: PresetHMAC}},
		{name: "hmac: rfc 4231 sha512 base64url", cfg: rfc("sha512", "base64url"), h: hdr("X-Sig", hexToB64(t, rfcSHA512, base64.URLEncoding)), body: rfcData, want: Event{Preset: PresetHMAC}},
	}
}

func TestPublishedVectorsVerify(t *testing.T) {
	for _, tc := range vectors(t) {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg, at(tc.now))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := v.Verify(tc.h, []byte(tc.body))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ev.Preset != tc.want.Preset || ev.ID != tc.want.ID || ev.Type != tc.want.Type ||
				!ev.Timestamp.Equal(tc.want.Timestamp) || ev.Secret != 0 {
				t.Fatalf("event = %+v, want %+v", ev, tc.want)
			}
			// The same delivery with one body byte changed must fail.
			tampered := []byte(tc.body)
			tampered[len(tampered)/2] ^= 1
			if _, err := v.Verify(tc.h, tampered); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("tampered body: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

// Sign must reproduce the published header values from the published inputs.
func TestSignReproducesVectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		id     string
		ts     int64
		body   string
		header string
		want   string
	}{
		{"standard-webhooks", Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, stdID, stdTS, stdBody, "webhook-signature", stdSigHdr},
		{"svix", Config{Preset: PresetSvix, Secrets: []string{stdSecret}}, stdID, stdTS, stdBody, "svix-signature", stdSigHdr},
		{"github", Config{Preset: PresetGitHub, Secrets: []string{ghSecret}}, "", 1, ghBody, "X-Hub-Signature-256", ghSig},
		{"stripe", Config{Preset: PresetStripe, Secrets: []string{stripeSecret}}, "", stripeTS, stripeBody, "Stripe-Signature", "t=1492774577,v1=" + stripeV1},
		{"stripe two secrets", Config{Preset: PresetStripe, Secrets: []string{stripeSecret, stripeRolledSecret}}, "", stripeTS, stripeBody, "Stripe-Signature", "t=1492774577,v1=" + stripeV1 + ",v1=" + stripeRolledV1},
		{"seed 000", Config{Preset: PresetActuallyCare, Secrets: []string{seedSecret}}, "", 1, seedBody, "X-Webhook-Signature", seedSig},
		{"slack", Config{Preset: PresetHMAC, Secrets: []string{slackSecret}, Header: "X-Slack-Signature", Prefix: "v0=", Signed: "v0:{timestamp}:{body}", TimestampHeader: "X-Slack-Request-Timestamp"}, "", slackTS, slackBody, "X-Slack-Signature", slackSig},
		{"rfc 4231 sha512", Config{Preset: PresetHMAC, Secrets: []string{rfcKey}, Header: "X-Sig", Algorithm: "sha512"}, "", 1, rfcData, "X-Sig", rfcSHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			h, err := v.Sign([]byte(tc.body), tc.id, time.Unix(tc.ts, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Get(tc.header); got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}
