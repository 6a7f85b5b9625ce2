package auth

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// AuthCodeConfig validates cfg (type oauth2, grant authorization_code) as
// [New] does and returns its golang.org/x/oauth2 configuration and the
// extra parameters (cfg.Params) to pass to both AuthCodeURL and Exchange.
// It is for login flows other than [StartLogin], such as a service's
// install routes; the caller sets RedirectURL on the returned Config if
// cfg's is not the one to use. Errors never include secret values.
func AuthCodeConfig(cfg Config) (*oauth2.Config, []oauth2.AuthCodeOption, error) {
	if cfg.Type != TypeOAuth2 || cfg.Grant != GrantAuthorizationCode {
		return nil, nil, errors.New("auth: login needs type oauth2 with grant authorization_code")
	}
	// A placeholder store: New demands one for authorization_code.
	if _, err := newOAuth2(cfg, buildOptions([]Option{WithTokenStore(&MemoryStore{})})); err != nil {
		return nil, nil, err
	}
	style, _ := authStyle(cfg.AuthStyle) // validated by newOAuth2
	var params []oauth2.AuthCodeOption
	for k, v := range cfg.Params {
		params = append(params, oauth2.SetAuthURLParam(k, v))
	}
	return oauthConfig(cfg, style), params, nil
}

// NewTokenError describes err, returned by golang.org/x/oauth2 for a
// request to tokenURL, as a [TokenError] whose message names the endpoint
// and the server's status and error code, with every non-empty one of
// secrets (client secret, authorization code, PKCE verifier, tokens)
// replaced by [REDACTED].
func NewTokenError(ctx context.Context, tokenURL string, err error, secrets ...string) *TokenError {
	return tokenRequestError(ctx, tokenURL, err, secrets)
}

// RebaseToken returns a copy of t, just received from a token endpoint,
// whose Expiry is computed on the clock now (golang.org/x/oauth2 uses the
// wall clock), as the tokens [StartLogin] and the oauth2 Authenticator
// store are. A token without expiry is returned unchanged.
func RebaseToken(now time.Time, t *oauth2.Token) *oauth2.Token {
	nt, _ := rebase(now, t)
	return nt
}
