package webhook_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

// receiver is a receiver on a real listener that keeps what plumb serve
// keeps: the job ids it stored. A delivery whose job id was stored is a
// duplicate and does not run.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	runs map[string]int // job id → times run
}

func newReceiver(t *testing.T, h *webhook.Hook) *receiver {
	r := &receiver{runs: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		d, err := h.Receive(req.Header, http.MaxBytesReader(w, req.Body, h.MaxBytes()))
		if err != nil {
			http.Error(w, err.Error(), webhook.Status(err))
			return
		}
		r.mu.Lock()
		dup := r.runs[d.JobID] > 0
		if !dup {
			r.runs[d.JobID]++
		}
		r.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"id": d.JobID, "duplicate": dup})
	}))
	t.Cleanup(r.Close)
	return r
}

// post sends body with hdr and returns the answer's status and whether it
// was a duplicate.
func (r *receiver) post(t *testing.T, hdr http.Header, body []byte) (int, bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ Duplicate bool }
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, ans.Duplicate
}

// A captured delivery resent under an unsigned id — changed, fresh or
// absent — is a duplicate of the original: dedupe rests on what is signed.
// Distinct deliveries still run, each once, whatever id they carry; an id
// used by a replay does not keep a later genuine event out.
func TestReplayUnderUnsignedID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    webhook.Config
		idName string
	}{
		{"github", webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{"gh-secret"}}, "X-GitHub-Delivery"},
		{"hmac body only", webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig", Prefix: "sha256=",
			IDHeader: "X-Delivery"}, "X-Delivery"},
		{"hmac timestamp, unsigned id", webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig",
			Signed: "{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Delivery"}, "X-Delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hook(t, webhook.HookConfig{Integration: "hooked", Verify: tc.cfg})
			r := newReceiver(t, h)
			e1 := []byte(`{"action":"opened","number":1}`)
			e2 := []byte(`{"action":"opened","number":2}`)
			e3 := []byte(`{"action":"closed","number":1}`)
			with := func(hdr http.Header, id string) http.Header {
				c := hdr.Clone()
				if id == "" {
					c.Del(tc.idName)
				} else {
					c.Set(tc.idName, id)
				}
				return c
			}
			orig := signedHeader(t, h, e1, "d-1")
			if code, dup := r.post(t, orig, e1); code != 200 || dup {
				t.Fatalf("the delivery: %d duplicate=%v", code, dup)
			}
			for _, replay := range []struct{ name, id string }{
				{"as captured", "d-1"}, {"changed id", "d-2"}, {"fresh id", "0f8e1c2a-9b7d-4e5f-a1b2-c3d4e5f60718"}, {"no id", ""},
			} {
				if code, dup := r.post(t, with(orig, replay.id), e1); code != 200 || !dup {
					t.Errorf("replay, %s: %d duplicate=%v, want a duplicate", replay.name, code, dup)
				}
			}
			// genuine deliveries run: one under the id a replay used, one
			// under the original's id, one under a new id
			for i, d := range []struct {
				body []byte
				id   string
			}{{e2, "d-2"}, {e3, "d-1"}, {[]byte(`{"action":"opened","number":3}`), "d-9"}} {
				if code, dup := r.post(t, signedHeader(t, h, d.body, d.id), d.body); code != 200 || dup {
					t.Errorf("genuine delivery %d: %d duplicate=%v", i+2, code, dup)
				}
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.runs) != 4 {
				t.Errorf("%d events ran, want 4: %v", len(r.runs), r.runs)
			}
		})
	}
}

// Where the scheme signs the id, the id stays the key: a sender's retry of
// one event (a new signature, the same signed id) is a duplicate, and a
// replay cannot change the id without breaking the signature.
func TestSignedIDStaysTheKey(t *testing.T) {
	std := hook(t, webhook.HookConfig{Integration: "std", Verify: webhook.Config{Preset: webhook.PresetStandard,
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}})
	r := newReceiver(t, std)
	body := []byte(`{"type":"lead.created","n":1}`)
	if code, dup := r.post(t, signedHeader(t, std, body, "msg_1"), body); code != 200 || dup {
		t.Fatalf("the delivery: %d %v", code, dup)
	}
	retry := []byte(`{"type":"lead.created","n":1, "attempt":2}`)
	if code, dup := r.post(t, signedHeader(t, std, retry, "msg_1"), retry); code != 200 || !dup {
		t.Errorf("the sender's retry: %d duplicate=%v", code, dup)
	}
	hdr := signedHeader(t, std, body, "msg_1")
	hdr.Set("webhook-id", "msg_2")
	if code, _ := r.post(t, hdr, body); code != http.StatusUnauthorized {
		t.Errorf("a replay under another id: %d, want 401", code)
	}

	// Stripe: the id is the signed body's
	st := hook(t, webhook.HookConfig{Integration: "st", Verify: webhook.Config{Preset: webhook.PresetStripe, Secrets: []string{"whsec_x"}}})
	a := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
	b := []byte(`{"id":"evt_1","type":"invoice.paid","livemode":false}`)
	d1, err1 := st.Receive(signedHeader(t, st, a, ""), bytes.NewReader(a))
	d2, err2 := st.Receive(signedHeader(t, st, b, ""), bytes.NewReader(b))
	if err := errors.Join(err1, err2); err != nil || d1.Key != "id:evt_1" || d1.JobID != d2.JobID || !d1.Event.IDSigned {
		t.Errorf("stripe: %v %+v %+v", err, d1, d2)
	}
}

// The key of a scheme without a signed id is the digest of the signed
// content: the body's SHA-256 for GitHub, whichever secret signed it.
func TestDigestKey(t *testing.T) {
	cfg := webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{"new", "old"}}
	h := hook(t, webhook.HookConfig{Integration: "gh", Verify: cfg})
	body := []byte(`{"zen":"Design for failure."}`)
	sum := sha256.Sum256(body)
	var ids []string
	for _, secret := range []string{"new", "old"} {
		v, err := webhook.New(webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{secret}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := v.Sign(body, "d-"+secret, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		hdr.Set("Content-Type", "application/json")
		d, err := h.Receive(hdr, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if d.Event.Digest != hex.EncodeToString(sum[:]) || d.Key != "sig:"+d.Event.Digest || d.Event.IDSigned || d.Event.ID != "d-"+secret {
			t.Errorf("signed with %s: event %+v, key %q", secret, d.Event, d.Key)
		}
		ids = append(ids, d.JobID)
	}
	if ids[0] != ids[1] {
		t.Error("the same body signed with the old secret is another event")
	}

	// Where a timestamp is signed it is part of the digest: the same body
	// signed at two times is two messages (both run; never a silent drop
	// of an event whose body repeats), a copy of one is a duplicate.
	tsCfg := webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"k"}, Header: "X-Sig",
		Signed: "{timestamp}.{body}", TimestampHeader: "X-Ts", IDHeader: "X-Delivery"}
	th := hook(t, webhook.HookConfig{Integration: "ts", Verify: tsCfg})
	beat := []byte(`{"status":"ok"}`)
	var keys []string
	for _, at := range []int64{1700000000, 1700000001, 1700000001} {
		hdr, err := th.Verifier().Sign(beat, "", time.Unix(at, 0))
		if err != nil {
			t.Fatal(err)
		}
		hdr.Set("Content-Type", "application/json")
		d, err := th.Receive(hdr, bytes.NewReader(beat))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(fmt.Appendf(nil, "%d.%s", at, beat))
		if d.Event.Digest != hex.EncodeToString(want[:]) {
			t.Errorf("at %d: digest %s is not the signed content's", at, d.Event.Digest)
		}
		keys = append(keys, d.JobID)
	}
	if keys[0] == keys[1] || keys[1] != keys[2] {
		t.Errorf("job ids %v: want the two times apart and the copy the same", keys)
	}
}

// A dedupe key must outlive every copy that still verifies: with a signed
// timestamp, twice the tolerance (plus a margin); without one, the window
// is the only bound, so its default is longer.
func TestHookWindow(t *testing.T) {
	std := webhook.Config{Preset: webhook.PresetStandard, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	withTol := func(c webhook.Config, d time.Duration) webhook.Config { c.Tolerance = d; return c }
	for _, tc := range []struct {
		name   string
		cfg    webhook.Config
		window time.Duration
		want   time.Duration
	}{
		{"signed timestamp, default", std, 0, webhook.DefaultWindow},
		{"signed timestamp, configured", std, time.Hour, time.Hour},
		{"shorter than twice the tolerance", std, time.Minute, 2*webhook.DefaultTolerance + webhook.WindowMargin},
		{"long tolerance", withTol(std, 13*time.Hour), 0, 26*time.Hour + webhook.WindowMargin},
		{"stripe", webhook.Config{Preset: webhook.PresetStripe, Secrets: []string{"s"}, Tolerance: 90 * time.Second}, time.Second, 4 * time.Minute},
		{"hmac with a timestamp", webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"s"}, Header: "X-Sig",
			Signed: "{timestamp}.{body}", TimestampHeader: "X-Ts", Tolerance: 1500 * time.Millisecond}, 0, webhook.DefaultWindow},
		{"rounded up to a second", withTol(std, 1250*time.Millisecond), time.Second, 63 * time.Second},
		{"github, default", webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{"s"}}, 0, webhook.DefaultWindowNoTimestamp},
		{"github, configured", webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{"s"}}, 90 * 24 * time.Hour, 90 * 24 * time.Hour},
		{"actuallycare, default", webhook.Config{Preset: webhook.PresetActuallyCare, Secrets: []string{"s"}}, 0, webhook.DefaultWindowNoTimestamp},
		{"hmac body only, default", webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"s"}, Header: "X-Sig"}, 0, webhook.DefaultWindowNoTimestamp},
		{"hmac body only, sub-second", webhook.Config{Preset: webhook.PresetHMAC, Secrets: []string{"s"}, Header: "X-Sig"}, 2500 * time.Millisecond, 3 * time.Second},
	} {
		h := hook(t, webhook.HookConfig{Integration: "w", Verify: tc.cfg, Window: tc.window})
		if got := h.Window(); got != tc.want {
			t.Errorf("%s: Window() = %v, want %v", tc.name, got, tc.want)
		}
	}
	if webhook.DefaultWindowNoTimestamp < 3*24*time.Hour {
		t.Error("the default window without a timestamp is shorter than GitHub's three days of redelivery")
	}
}
