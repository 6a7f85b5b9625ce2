package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// This file holds what a TokenStore keeps about a login besides its token:
// that the partner refused it (Refusal), which version of the token a
// store holds (VersionedTokenStore) and replacing a token only if it is
// still the one read (SwappingTokenStore); and NoTokenStore, for a caller
// that has no store to give.

// refusalKey is the token extra carrying a *Refusal.
const refusalKey = "plumb_refused"

// Refusal records that the partner refused a login: its token endpoint
// answered invalid_grant to the login's refresh token (the grant was
// revoked, expired or replaced). An authorization_code Authenticator
// stores it in place of the dead token ([RefusedToken]), so every runner
// and instance sharing the store, and whoever shows the login's status,
// know that a new login is needed without asking the partner again. A new
// login, saved over it, ends it.
type Refusal struct {
	// At is when the refresh was refused.
	At time.Time `json:"at"`
	// Reason is the token endpoint's answer (status, error code and
	// description), without any secret.
	Reason string `json:"reason"`
}

// RefusedToken is the token a store keeps for a refused login: no access
// or refresh token, only r (see [RefusalOf]).
func RefusedToken(r Refusal) *oauth2.Token {
	return (&oauth2.Token{}).WithExtra(map[string]any{refusalKey: &r})
}

// RefusalOf returns the refusal a token read from a TokenStore records,
// or nil when t is nil or an ordinary token.
func RefusalOf(t *oauth2.Token) *Refusal {
	if t == nil {
		return nil
	}
	r, _ := t.Extra(refusalKey).(*Refusal)
	return r
}

// SameToken reports whether a and b are the same stored login: both nil,
// or the same access and refresh tokens and the same refusal (if any).
// A [SwappingTokenStore] compares with it.
func SameToken(a, b *oauth2.Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	ra, rb := RefusalOf(a), RefusalOf(b)
	if (ra == nil) != (rb == nil) || (ra != nil && *ra != *rb) {
		return false
	}
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken
}

// storedToken is the JSON form of a stored token: oauth2.Token's fields,
// and the refusal when there is one.
type storedToken struct {
	oauth2.Token
	Refused *Refusal `json:"plumb_refused,omitempty"`
}

// MarshalToken is the JSON a TokenStore keeps for t: golang.org/x/oauth2's
// fields, plus the [Refusal] of a refused login. Stores of this module
// use it, so a refusal survives a restart and reaches every instance.
func MarshalToken(t *oauth2.Token) ([]byte, error) {
	if t == nil {
		return nil, errors.New("auth: token store: nil token")
	}
	return json.Marshal(record(t))
}

func record(t *oauth2.Token) storedToken { return storedToken{Token: *t, Refused: RefusalOf(t)} }

// UnmarshalToken reads what [MarshalToken] wrote (or a plain
// oauth2.Token's JSON). Errors never quote the input.
func UnmarshalToken(b []byte) (*oauth2.Token, error) {
	t, err := decodeToken(b)
	if err != nil {
		return nil, fmt.Errorf("auth: token store: %s", jsonErrNoData(err))
	}
	return t, nil
}

// decodeToken is UnmarshalToken with json's own error (which may quote
// the input: callers pass it through jsonErrNoData).
func decodeToken(b []byte) (*oauth2.Token, error) {
	var st storedToken
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	t := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry, ExpiresIn: st.ExpiresIn}
	if st.Refused != nil {
		t = t.WithExtra(map[string]any{refusalKey: st.Refused})
	}
	return t, nil
}

// VersionedTokenStore is a TokenStore that says cheaply, without reading
// a token, whether what it holds changed. An authorization_code
// Authenticator over one compares the version before each use and reads
// the token again when it moved, so a new login saved through the same
// store (an install flow's callback, another runner) is used from the next
// request on, not from the next refresh.
type VersionedTokenStore interface {
	TokenStore
	// Version returns a number that changes whenever a token is saved or
	// deleted through this store value (it may also change for other
	// keys). Changes made elsewhere (another process) need not move it.
	Version(key string) uint64
}

// SwappingTokenStore is a TokenStore that replaces a token only if it is
// still the one the caller read, so an Authenticator saving a refreshed
// token (or a refusal) never overwrites a login saved meanwhile.
type SwappingTokenStore interface {
	TokenStore
	// Swap saves t under key if the token stored there is still old
	// ([SameToken]; nil: none) and reports whether it did.
	Swap(key string, old, t *oauth2.Token) (bool, error)
}

// ErrNoTokenStore is returned (wrapped) by [New] and [StartLogin] for the
// authorization_code grant when there is no token store to keep the
// login in.
var ErrNoTokenStore = errors.New("oauth2 authorization_code needs a token store to keep its login")

// NoTokenStore stands for a token store the caller cannot provide; reason
// says why and what to do, in the caller's words (a service names its
// configuration, e.g. the variable that holds the encryption key). Given
// to [WithTokenStore], it makes New and StartLogin refuse the
// authorization_code grant with an error wrapping [ErrNoTokenStore] that
// ends with reason; client_credentials works as without a store.
func NoTokenStore(reason string) TokenStore { return noTokenStore{reason} }

type noTokenStore struct{ reason string }

func (s noTokenStore) err() error { return fmt.Errorf("auth: %w: %s", ErrNoTokenStore, s.reason) }

// Load implements TokenStore: always the reason.
func (s noTokenStore) Load(string) (*oauth2.Token, error) { return nil, s.err() }

// Save implements TokenStore: always the reason.
func (s noTokenStore) Save(string, *oauth2.Token) error { return s.err() }

// Delete implements TokenStore: nothing to delete.
func (s noTokenStore) Delete(string) error { return nil }

// LoginRefusedError is returned by an authorization_code Authenticator
// whose login the partner refused (see [Refusal]). Until a new login is
// stored, every request fails at once with it, without asking the partner
// again. It wraps [ErrNotLoggedIn], and the [TokenError] in the process
// that received the refusal.
type LoginRefusedError struct {
	Refusal
	hint  string
	cause error // the *TokenError, or nil when the refusal was read from the store
	note  string
}

// Error implements error: when the login was refused, the partner's
// answer, and what to do.
func (e *LoginRefusedError) Error() string {
	return fmt.Sprintf("auth: %s: the partner refused the login at %s (%s); a new login is needed: %s%s",
		ErrNotLoggedIn, e.At.UTC().Format(time.RFC3339), e.Reason, e.hint, e.note)
}

// Unwrap returns ErrNotLoggedIn and, when known, the token endpoint's
// *TokenError.
func (e *LoginRefusedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrNotLoggedIn}
	}
	return []error{ErrNotLoggedIn, e.cause}
}
