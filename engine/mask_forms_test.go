package engine

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestMaskerMoreForms: hex of either case, the secret in another letter
// case, its base64 inside a longer base64 value (any byte alignment,
// either alphabet), and pieces of it (halves, a window in the middle)
// are masked; pieces shorter than the rule's threshold are not, and
// neither is text that only shares short runs with the secret.
func TestMaskerMoreForms(t *testing.T) {
	const key = "Sk_live-4eC39HqLyjWDarjtT1zdp7dcQ"
	m := newMasker([]string{key, "1234"})
	b := []byte(key)
	masked := map[string]string{
		"hex":       hex.EncodeToString(b),
		"HEX":       strings.ToUpper(hex.EncodeToString(b)),
		"lower":     strings.ToLower(key),
		"upper":     strings.ToUpper(key),
		"first":     key[:len(key)/2],
		"second":    key[len(key)/2:],
		"middle":    key[10:22],
		"hex-half":  hex.EncodeToString(b)[:len(key)],
		"urlraw":    base64.RawURLEncoding.EncodeToString(b),
		"std-upper": strings.ToUpper(base64.StdEncoding.EncodeToString(b)),
	}
	for k := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			wrapped := enc.EncodeToString([]byte(strings.Repeat("p", k) + `{"key":"` + key + `","n":1}`))
			masked[fmt.Sprintf("inside-%d-%p", k, enc)] = wrapped
		}
	}
	for name, form := range masked {
		got := m.text("before " + form + " after")
		if !strings.Contains(got, mask) || strings.Contains(strings.ToLower(got), strings.ToLower(key[4:16])) {
			t.Errorf("%s: %q", name, got)
		}
		if strings.HasPrefix(name, "inside") {
			// the encoded key (4 characters per 3 bytes) is gone, but for
			// the characters it shares with what is around it
			if shown := len(strings.ReplaceAll(got, mask, "")) - len("before  after"); shown > len(form)-4*len(key)/3+4 {
				t.Errorf("%s: %q shows %d of %d characters", name, got, shown, len(form))
			}
			continue
		}
		for i := 0; i+maxRun <= len(form); i++ {
			if piece := form[i : i+maxRun]; strings.Contains(got, piece) {
				t.Errorf("%s: %q still shows %q", name, got, piece)
				break
			}
		}
	}
	for in, want := range map[string]string{
		"id " + key[:7] + " and " + key[20:27]: "id " + key[:7] + " and " + key[20:27], // 7 characters: below the rule
		"31323334":                             mask,                                   // hex of the short secret, alone
		"x31323334y and xMTIzNA==":             "x31323334y and xMTIzNA==",             // not alone
		"pin 1234, not 12345":                  "pin ****, not 12345",
		"d3b07384-d9a0-4c9f-8e3b-1f2a3c4d5e6f": "d3b07384-d9a0-4c9f-8e3b-1f2a3c4d5e6f",
	} {
		if got := m.text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
	// a piece cut inside a multi-byte character still leaves valid UTF-8
	u := newMasker([]string{"пароль-ключ-секрет"})
	for _, in := range []string{"x пароль-ключ y", "ароль-клю", "ЛЮЧ-СЕКРЕТ"} {
		if got := u.text(in); !utf8.ValidString(got) {
			t.Errorf("text(%q) = %q: not UTF-8", in, got)
		}
	}
}

// TestMaskerURLAndHeaderForms: the new forms are masked by component in
// URLs and by value in headers too.
func TestMaskerURLAndHeaderForms(t *testing.T) {
	const key = "Sk_live-4eC39HqLyjWDarjtT1zdp7dcQ"
	m := newMasker([]string{key})
	h := hex.EncodeToString([]byte(key))
	for in, want := range map[string]string{
		"https://h.example/v1/" + strings.ToUpper(h) + "/x?k=" + strings.ToLower(key): "https://h.example/v1/****/x?k=****",
		"https://h.example/?k=" + key[:20] + "#" + key:                                "https://h.example/?k=****#****",
	} {
		if got := m.url(in); got != want {
			t.Errorf("url(%q) = %q, want %q", in, got, want)
		}
	}
	hd := m.header(http.Header{"X-Echo": {strings.ToUpper(h)}, "X-Half": {"k=" + key[16:]}}, nil)
	if hd.Get("X-Echo") != mask || hd.Get("X-Half") != "k="+mask {
		t.Errorf("header: %v", hd)
	}
}

// TestClipMasksBeforeCutting: a secret across the cut of a reason leaves
// none of itself, however short the piece the cut would leave.
func TestClipMasksBeforeCutting(t *testing.T) {
	const key = "Sk_live-4eC39HqLyjWDarjtT1zdp7dcQ"
	form := base64.StdEncoding.EncodeToString([]byte(key))
	m := newMasker([]string{key})
	for n := range 200 {
		s := strings.Repeat("word ", n/5) + form + " tail"
		for cut := 0; cut <= len(s); cut++ {
			got := m.clip(s, cut)
			if !strings.HasPrefix(m.text(s), strings.TrimSuffix(got, "…")) || len(got) > cut+len("…") {
				t.Fatalf("clip(%q, %d) = %q", s, cut, got)
			}
		}
	}
	// through a partner's answer: 196 bytes of words, then the base64 of
	// the key; the reason is cut at 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		fmt.Fprintf(w, "%s\n\n  %s and more", strings.Repeat("ab ", 65)+"c", form)
	}))
	defer srv.Close()
	p, err := Parse("c.yaml", []byte("version: 1\nname: c\nsettings: { u: {}, key: { secret: true } }\nsteps: [ { name: s, request: { url: \"{{settings.u}}\" } } ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(Config{Values: map[string]any{"u": srv.URL, "key": key}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	res := r.Run(context.Background(), map[string]any{})
	if res.Outcome != Failure || strings.Contains(res.Reason, form[:3]) || !strings.HasSuffix(res.Reason, " c ***…") {
		t.Errorf("reason %q", res.Reason)
	}
}

// FuzzMaskClip: whatever the secret and the text around its forms, the
// masked text holds no run of a form as long as the rule masks, and a
// clipped text reveals nothing the masked whole does not (it is a prefix
// of it).
func FuzzMaskClip(f *testing.F) {
	f.Add("Sk_live-4eC39HqLyjWDarjtT1zdp7dcQ", "reason: ", " end", 3, 40)
	f.Add("пароль-ключ-секрет", "x", "", 1, 7)
	f.Add("aaaaaaaaaaaaaaaaaaaa", "aaaa", "AAAAAAAAA", 0, 12)
	f.Fuzz(func(t *testing.T, secret, before, after string, which, cut int) {
		if len(secret) < longSecret || len(secret) > 200 || strings.Contains(secret, "*") || len(before)+len(after) > 1000 {
			t.Skip()
		}
		forms := secretForms(secret, true)
		form := forms[uint(which)%uint(len(forms))]
		s := before + form + after
		m := newMasker([]string{secret})
		out := m.text(s)
		low := foldASCII(out)
		for _, f := range forms {
			f = foldASCII(f)
			n := minRun(f)
			for i := 0; i+n <= len(f); i++ {
				if strings.Contains(low, f[i:i+n]) {
					t.Fatalf("text(%q) = %q shows %q of the form %q", s, out, f[i:i+n], f)
				}
			}
		}
		cut = int(uint(cut) % uint(len(s)+2))
		if got := m.clip(s, cut); !strings.HasPrefix(out, strings.TrimSuffix(got, "…")) {
			t.Fatalf("clip(%q, %d) = %q, not a prefix of %q", s, cut, got, out)
		}
	})
}
