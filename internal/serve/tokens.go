package serve

// Bearer tokens: the two sets (API and console), the strength every token
// must have, and the constant-time check.

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/plumbhq/plumb/internal/oauthflow"
	"github.com/plumbhq/plumb/internal/telemetry"
)

// The weakest token New accepts (API and console alike): at least
// MinTokenLength characters and at least MinTokenBits by tokenBits'
// estimate. `openssl rand -hex 32` is far above both.
const (
	MinTokenLength = 16
	MinTokenBits   = 56
)

// tokenHint is how to make a token that passes CheckToken.
const tokenHint = "generate one with: openssl rand -hex 32"

// CheckToken says why tok is too weak to guard the API or the console, or
// nil. The estimate is the length of the token's repeating block (the
// whole token unless it repeats one) times the Shannon entropy of its
// characters, or of the steps between neighbouring characters when that is
// lower: a repeat, a run (abcdef…, 123456…) or a few characters used over
// and over score low. It is a floor against short and patterned tokens,
// not a proof of randomness: generate tokens, do not choose them. The error
// never quotes the token.
func CheckToken(tok string) error {
	n := utf8.RuneCountInString(tok)
	if n < MinTokenLength {
		return fmt.Errorf("%d characters, fewer than %d (%s)", n, MinTokenLength, tokenHint)
	}
	if bits := tokenBits(tok); bits < MinTokenBits {
		return fmt.Errorf("about %.0f bits by plumb's estimate, fewer than %d: it repeats itself, runs in sequence or uses too few characters (%s)", bits, MinTokenBits, tokenHint)
	}
	return nil
}

// tokenBits estimates the strength of tok in bits (see CheckToken).
func tokenBits(tok string) float64 {
	r := []rune(tok)
	r = r[:period(r)]
	steps := make([]rune, 0, len(r))
	for i := 1; i < len(r); i++ {
		steps = append(steps, r[i]-r[i-1])
	}
	return float64(len(r)) * min(entropy(r), entropy(steps))
}

// period is the length of the shortest block r repeats (the rest of r
// continues the block, and covers at least half of it), or len(r).
func period(r []rune) int {
	for p := 1; 3*p <= 2*len(r); p++ {
		repeats := true
		for i := p; i < len(r); i++ {
			if r[i] != r[i-p] {
				repeats = false
				break
			}
		}
		if repeats {
			return p
		}
	}
	return len(r)
}

// entropy is the Shannon entropy of xs' distribution, in bits per item.
func entropy(xs []rune) float64 {
	if len(xs) == 0 {
		return 0
	}
	count := map[rune]int{}
	for _, x := range xs {
		count[x]++
	}
	var h float64
	for _, c := range count {
		p := float64(c) / float64(len(xs))
		h -= p * math.Log2(p)
	}
	return h
}

// checkTokens refuses a set holding a token CheckToken refuses, naming it
// by its place in the set (never by its value).
func checkTokens(what string, toks []string) error {
	for i, t := range toks {
		if err := CheckToken(t); err != nil {
			return fmt.Errorf("serve: %s token %d of %d is too weak: %w", what, i+1, len(toks), err)
		}
	}
	return nil
}

// cleanTokens drops blank tokens and surrounding space.
func cleanTokens(in []string) []string {
	out := in[:0:0]
	for _, t := range in {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// tokenSet is a set of bearer tokens, kept as SHA-256 digests.
type tokenSet struct{ sums [][32]byte }

func newTokenSet(toks []string) tokenSet {
	s := tokenSet{sums: make([][32]byte, len(toks))}
	for i, t := range toks {
		s.sums[i] = sha256.Sum256([]byte(t))
	}
	return s
}

func (s tokenSet) empty() bool { return len(s.sums) == 0 }

// match reports whether tok is in the set, in constant time over digests
// (so the tokens' lengths do not leak either) and over every token.
func (s tokenSet) match(tok string) bool {
	if tok == "" {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	found := 0
	for _, want := range s.sums {
		found |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return found == 1
}

// credential is the bearer token r presents, and whether it presents one:
// the Authorization header, or ?access_token= on the OAuth2 install routes
// only (a browser starting an install cannot send a header; everywhere
// else a token in a URL would end up in proxies' and browsers' logs).
// Several Authorization headers present no valid token: which of them a
// proxy on the way passes on, or merges, is not for the client to choose.
func credential(r *http.Request) (string, bool) {
	if len(r.Header.Values("Authorization")) > 1 {
		return "", true
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if strings.HasPrefix(r.URL.EscapedPath(), oauthflow.Prefix) && r.URL.Query().Has("access_token") {
			return strings.TrimSpace(r.URL.Query().Get("access_token")), true
		}
		return "", false
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// allow reports whether r presents a token of set. A wrong token counts
// against r's client (see failLimiter); a request presenting none does not.
func (s *Server) allow(set tokenSet, r *http.Request) bool {
	tok, presented := credential(r)
	if set.match(tok) {
		return true
	}
	if presented {
		if s.limiter.fail(clientKey(r)) {
			s.log.WarnContext(r.Context(), "too many wrong bearer tokens: the client is refused (429) for a while", "remote", clientKey(r),
				"burst", AuthFailBurst, "then_one_per_ms", telemetry.Millis(AuthFailEvery))
		}
	}
	return false
}

// authorized checks r against the API tokens (the API role). With no API
// tokens the API is open (the server then listens on loopback only and
// answers only to loopback Host names).
func (s *Server) authorized(r *http.Request) bool {
	if s.apiTokens.empty() {
		return true
	}
	return s.allow(s.apiTokens, r)
}

// consoleAuthorized checks r against the console tokens (the console
// role): an API token does not open the console.
func (s *Server) consoleAuthorized(r *http.Request) bool {
	return s.allow(s.consoleTokens, r)
}
