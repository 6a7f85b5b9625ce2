package webhook

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
)

// A signature is compared whole: one that is a prefix of the right one
// (one byte, half, all but one byte, nothing) or that the right one is a
// prefix of (one byte more) is refused in every preset and encoding, in
// the scheme's own encoding and in the other one. A prefix compare
// (hmac.Equal(sum[:len(c)], c)) would let a sender without the secret
// forge a delivery in at most 256 tries.
func TestTruncatedSignatures(t *testing.T) {
	const body, id = `{"id":"evt_1","type":"lead.created"}`, "msg_1"
	ts := strconv.FormatInt(now0, 10)
	hexF := func(b []byte) string { return hex.EncodeToString(b) }
	b64F := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	b64uF := func(b []byte) string { return base64.URLEncoding.EncodeToString(b) }
	single := func(name, prefix string) func(string) http.Header {
		return func(enc string) http.Header { return hdr(name, prefix+enc, "X-Ts", ts, "X-Id", id) }
	}
	std := func(p string) func(string) http.Header {
		return func(enc string) http.Header {
			return hdr(p+"-id", id, p+"-timestamp", ts, p+"-signature", "v1,"+enc)
		}
	}
	for _, tc := range []struct {
		name       string
		cfg        Config
		own, other func([]byte) string // the scheme's encoding and the other form
		put        func(enc string) http.Header
	}{
		{"standard-webhooks", Config{Preset: PresetStandard, Secrets: []string{stdSecret}}, b64F, hexF, std("webhook")},
		{"svix", Config{Preset: PresetSvix, Secrets: []string{stdSecret}}, b64F, hexF, std("svix")},
		{"github", Config{Preset: PresetGitHub, Secrets: []string{ghSecret}}, hexF, b64F, single("X-Hub-Signature-256", "sha256=")},
		{"stripe", Config{Preset: PresetStripe, Secrets: []string{stripeSecret}}, hexF, b64F,
			func(enc string) http.Header { return hdr("Stripe-Signature", "t="+ts+",v1="+enc) }},
		{"actuallycare", Config{Preset: PresetActuallyCare, Secrets: []string{seedSecret}}, hexF, b64F, single("X-Webhook-Signature", "")},
		{"hmac sha256 hex", Config{Preset: PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig", Prefix: "v0=",
			Signed: "v0:{timestamp}:{body}", TimestampHeader: "X-Ts"}, hexF, b64F, single("X-Sig", "v0=")},
		{"hmac sha512 base64", Config{Preset: PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig", Algorithm: "sha512",
			Encoding: "base64", Signed: "{id}.{body}", IDHeader: "X-Id"}, b64F, hexF, single("X-Sig", "")},
		{"hmac sha1 base64url", Config{Preset: PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig", Prefix: "sha1=", Algorithm: "sha1",
			Encoding: "base64url"}, b64uF, hexF, single("X-Sig", "sha1=")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, tc.cfg, at(now0))
			mac := hmac.New(v.newHash, v.keys[0])
			v.writeSigned(mac, []byte(body), ts, id)
			sum := mac.Sum(nil)
			if _, err := v.Verify(tc.put(tc.own(sum)), []byte(body)); err != nil {
				t.Fatalf("the whole signature: %v", err)
			}
			variants := map[string][]byte{
				"one byte":            sum[:1],
				"two bytes":           sum[:2],
				"half":                sum[:len(sum)/2],
				"all but one byte":    sum[:len(sum)-1],
				"empty":               {},
				"one byte more":       append(append([]byte{}, sum...), 0),
				"twice":               append(append([]byte{}, sum...), sum...),
				"first byte repeated": append(append([]byte{}, sum[:1]...), sum[:1]...),
			}
			for name, sig := range variants {
				for form, enc := range map[string]func([]byte) string{"own encoding": tc.own, "other encoding": tc.other} {
					_, err := v.Verify(tc.put(enc(sig)), []byte(body))
					if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMissingSignature) {
						t.Errorf("%s (%d of %d bytes), %s: err = %v, want refused", name, len(sig), len(sum), form, err)
					}
				}
			}
			// the whole signature in the other encoding is not a signature either
			if _, err := v.Verify(tc.put(tc.other(sum)), []byte(body)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("the whole signature in the other encoding: err = %v", err)
			}
		})
	}
}
