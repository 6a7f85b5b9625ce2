package webhook

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// fuzzConfigs are the verifiers FuzzVerify drives: every preset, and a
// generic one using every placeholder.
var fuzzConfigs = []Config{
	{Preset: PresetStandard, Secrets: []string{stdSecret, "whsec_c2VjcmV0LW51bWJlci10d28="}},
	{Preset: PresetSvix, Secrets: []string{stdSecret}},
	{Preset: PresetGitHub, Secrets: []string{ghSecret}},
	{Preset: PresetStripe, Secrets: []string{stripeSecret, stripeRolledSecret}},
	{Preset: PresetActuallyCare, Secrets: []string{seedSecret}},
	{Preset: PresetHMAC, Secrets: []string{"k1", "k2"}, Header: "X-Sig", Prefix: "v0=", Algorithm: "sha1", Encoding: "base64url",
		Signed: "{id}:{timestamp}:{body}", TimestampHeader: "X-Ts", IDHeader: "X-Id"},
}

// FuzzVerify feeds arbitrary header values and bodies to every preset: Verify
// must never panic, must fail only with one of the three reasons, a
// delivery signed by Sign for the same inputs must verify, and its dedupe
// key must not change with an unsigned id.
func FuzzVerify(f *testing.F) {
	f.Add("v1,"+stdSigHdr[3:], "1614265330", stdID, []byte(stdBody))
	f.Add(ghSig, "", "", []byte(ghBody))
	f.Add("t=1492774577,v1="+stripeV1+",v1=zz,v0=", "", "", []byte(stripeBody))
	f.Add(seedSig, "", "", []byte(seedBody))
	f.Add("", "", "", []byte{})
	f.Add("t=,t=,v1=,=,,", "-1", "\x00", []byte{0xff, '{'})
	f.Add("v1, v1,=== v1a,AA==", "99999999999999999999", "msg", []byte(`{"id":1,"type":[]}`))

	now := at(1614265330)
	verifiers := make([]*Verifier, len(fuzzConfigs))
	for i, c := range fuzzConfigs {
		verifiers[i] = mustNew(f, c, now)
	}
	f.Fuzz(func(t *testing.T, sig, ts, id string, body []byte) {
		for _, v := range verifiers {
			// The fuzzed values go into every header any preset reads.
			h := http.Header{}
			for _, name := range []string{"webhook-signature", "svix-signature", "X-Hub-Signature-256", "Stripe-Signature", "X-Webhook-Signature", "X-Sig"} {
				h.Set(name, sig)
			}
			for _, name := range []string{"webhook-timestamp", "svix-timestamp", "X-Ts"} {
				h.Set(name, ts)
			}
			for _, name := range []string{"webhook-id", "svix-id", "X-Id", "X-GitHub-Delivery"} {
				h.Set(name, id)
			}
			if _, err := v.Verify(h, body); err != nil && !errors.Is(err, ErrMissingSignature) &&
				!errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStale) {
				t.Fatalf("%s: unexpected error %v", v.Preset(), err)
			}

			// Round trip: what Sign produces, Verify accepts.
			sh, err := v.Sign(body, id, time.Unix(1614265330, 0))
			if err != nil {
				continue // e.g. an id with control characters, or no id where one is signed
			}
			ev, err := v.Verify(sh, body)
			if err != nil {
				t.Fatalf("%s: Verify(Sign(body)) = %v", v.Preset(), err)
			}
			// The dedupe key rests on signed material: another unsigned
			// id leaves it as it is.
			if !ev.IDSigned {
				sh.Set("X-GitHub-Delivery", "replayed-"+id)
				if ev2, err := v.Verify(sh, body); err != nil || ev2.Key() != ev.Key() || ev.Key() == "" {
					t.Fatalf("%s: an unsigned id changed the key: %q → %q (%v)", v.Preset(), ev.Key(), ev2.Key(), err)
				}
			}
		}
	})
}
