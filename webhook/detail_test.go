package webhook

import (
	"net/http"
	"strings"
	"testing"
)

// TestRefusalDetails pins the whole error of every way Verify refuses a
// delivery, scheme by scheme, in the order the checks run: the signature
// header first, then the timestamp and id headers, the timestamp's form,
// the signature itself and last the tolerance.
func TestRefusalDetails(t *testing.T) {
	std := Config{Preset: PresetStandard, Secrets: []string{stdSecret}}
	gh := Config{Preset: PresetGitHub, Secrets: []string{ghSecret}}
	st := Config{Preset: PresetStripe, Secrets: []string{stripeSecret}}
	gen := Config{Preset: PresetHMAC, Secrets: []string{"generic-secret"}, Header: "X-Sig", Prefix: "sha512=", Algorithm: "sha512",
		Encoding: "base64", Signed: "{id}.{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id"}
	body := `{"id":"evt_1","type":"lead.created"}`
	stdH := signed(t, std, body, "msg_1", now0)
	stH := signed(t, st, body, "", now0)
	genH := signed(t, gen, body, "id-1", now0)
	stdSig, stSig := stdH.Get("webhook-signature"), stH.Get("Stripe-Signature")
	tooMany := strings.Repeat("v1,AAAA ", MaxSignatures+1)

	for _, tc := range []struct {
		name string
		cfg  Config
		h    http.Header
		now  int64
		want string
	}{
		{"single missing", gh, http.Header{}, now0, "missing signature: no X-Hub-Signature-256 header"},
		{"single prefix", gh, hdr("X-Hub-Signature-256", "sha1=00"), now0, `bad signature: X-Hub-Signature-256 does not start with "sha256="`},
		{"single encoding", gh, hdr("X-Hub-Signature-256", "sha256=zz"), now0, "bad signature: X-Hub-Signature-256 is not hex"},
		{"single encoding base64", gen, with(genH, "X-Sig", "sha512=!"), now0, "bad signature: X-Sig is not base64"},
		{"standard missing", std, with(stdH, "webhook-signature", " "), now0, "missing signature: no webhook-signature header"},
		{"standard too many", std, with(stdH, "webhook-signature", tooMany), now0, "bad signature: webhook-signature has more than 32 signatures"},
		{"standard no v1", std, with(stdH, "webhook-signature", "v2,AAAA v1,!!"), now0, "bad signature: webhook-signature has no v1 signature in base64"},
		{"standard no timestamp", std, with(stdH, "webhook-timestamp", ""), now0, "missing signature: no webhook-timestamp header"},
		{"standard no id", std, with(stdH, "webhook-id", ""), now0, "missing signature: no webhook-id header"},
		{"standard timestamp form", std, with(stdH, "webhook-timestamp", "1e9"), now0, "bad signature: the timestamp is not a unix time in seconds"},
		{"standard no match", std, with(stdH, "webhook-id", "msg_2"), now0, "bad signature: no signature matches any secret"},
		{"standard old", std, stdH, now0 + 301, "timestamp outside tolerance: the timestamp is older than the 5m0s tolerance"},
		{"standard future", std, stdH, now0 - 301, "timestamp outside tolerance: the timestamp is more than 5m0s in the future"},
		{"standard ok among others", std, with(stdH, "webhook-signature", "v1,AAAA "+stdSig+" v1,AAAA"), now0, ""},
		{"stripe missing", st, http.Header{}, now0, "missing signature: no Stripe-Signature header"},
		{"stripe two t", st, hdr("Stripe-Signature", stSig+",t=1"), now0, "bad signature: Stripe-Signature has more than one t="},
		{"stripe empty t", st, hdr("Stripe-Signature", "t=,"+stSig), now0, "bad signature: Stripe-Signature has an empty t="},
		{"stripe too many", st, hdr("Stripe-Signature", stSig+strings.Repeat(",v1=00", MaxSignatures)), now0, "bad signature: Stripe-Signature has more than 32 signatures"},
		{"stripe no t", st, hdr("Stripe-Signature", "v1=00"), now0, "bad signature: Stripe-Signature has no t= timestamp"},
		{"stripe no v1", st, hdr("Stripe-Signature", "t=1,v1=zz"), now0, "bad signature: Stripe-Signature has no v1 signature in hex"},
		{"stripe timestamp form", st, hdr("Stripe-Signature", "t=x,v1=00"), now0, "bad signature: the timestamp is not a unix time in seconds"},
		{"stripe old", st, stH, now0 + 301, "timestamp outside tolerance: the timestamp is older than the 5m0s tolerance"},
		{"hmac no timestamp", gen, with(genH, "X-Ts", ""), now0, "missing signature: no X-Ts header"},
		{"hmac no id", gen, with(genH, "X-Id", ""), now0, "missing signature: no X-Id header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustNew(t, tc.cfg, at(tc.now)).Verify(tc.h, []byte(body))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want != "" {
				tc.want = "webhook: " + tc.want
			}
			if got != tc.want {
				t.Errorf("err = %q, want %q", got, tc.want)
			}
		})
	}
}
