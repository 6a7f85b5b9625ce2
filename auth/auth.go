// Package auth signs outgoing HTTP requests for plumb integrations.
//
// It is public because an embedder plugs in here: a custom `x-` scheme
// (an [Authenticator] given to engine.WithAuthScheme) and a token store of
// its own ([TokenStore], with [MarshalToken]/[UnmarshalToken] and
// [SameToken] so a refused login and compare-and-swap survive in it), and
// may sign requests of its own with [New]. plumb's own token plumbing
// (the cluster's shared store, the install flow) builds on the same API.
//
// An integration's `auth:` section decodes into a [Config]. The engine calls
// [New] once per run (per resolved settings) and then, for every try of every
// request, calls [Authenticator.Apply] just before sending, so retries are
// signed afresh (new HMAC timestamp, refreshed OAuth2 token). When a response
// is a 401 and the step has a `reauth` rule, the engine calls
// [Reauther.Reauth] with the failed request and retries once.
//
// Supported schemes:
//
//   - api_key: a static key in a header (default X-API-Key) or a query
//     parameter (default api_key).
//   - basic: HTTP Basic authentication.
//   - bearer: "Authorization: Bearer <token>".
//   - oauth2: client_credentials (tokens fetched and cached, shared by all
//     concurrent requests, refreshed before expiry) or authorization_code
//     (tokens obtained once with [StartLogin] and kept in a [TokenStore],
//     refreshed with the refresh token, rotated refresh tokens persisted;
//     a refresh the partner refuses with invalid_grant is recorded in the
//     store as a [Refusal] and shared like a token: later requests fail at
//     once with a [LoginRefusedError] until a new login is stored, which is
//     then used from the next request on).
//   - hmac: an HMAC-SHA256/512 signature over a message built from a Go
//     text/template (compiled once by New), with a timestamp header.
//   - rotate: a list of tokens used round robin; tokens rejected with a 401
//     are skipped after Reauth.
//
// Secrets (keys, passwords, tokens, client secrets) never appear in error
// messages produced by this package.
//
// An Authenticator is safe for concurrent use by all the leads of a run.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/plumbhq/plumb/steps"
)

// Scheme names accepted in Config.Type.
const (
	TypeAPIKey = "api_key"
	TypeBasic  = "basic"
	TypeBearer = "bearer"
	TypeOAuth2 = "oauth2"
	TypeHMAC   = "hmac"
	TypeRotate = "rotate"
)

// OAuth2 grants accepted in Config.Grant (declared by steps.OAuth2Grants).
const (
	GrantClientCredentials = string(steps.GrantClientCredentials)
	GrantAuthorizationCode = string(steps.GrantAuthorizationCode)
)

// Config is the decoded `auth:` section of an integration (or of a step
// that overrides it): the file model's steps.AuthConfig, declared once for
// the file, its schema and the schemes (its fields are documented there).
// Values are already rendered from settings; only Message (hmac) is a
// template, compiled by [New]. YAML field names are the snake_case forms of
// the Go names (token_url, client_id, signature_header, ...); error messages
// use those names. Its String masks every secret.
type Config = steps.AuthConfig

// Authenticator signs requests. Implementations are safe for concurrent use.
type Authenticator interface {
	// Apply adds credentials to req, which is about to be sent with body
	// (body is only read, by hmac). It is called for every try, so it
	// replaces rather than adds what an earlier call set.
	Apply(ctx context.Context, req *http.Request, body []byte) error
}

// Reauther is implemented by schemes that can drop a rejected credential and
// get a new one: oauth2 drops its cached token and fetches (or refreshes) a
// fresh one; rotate marks the token that failed's header carries as bad. An
// error means nothing new can be had and the request should not be retried.
//
// Concurrent Reauth calls for the same rejected credential do the work once.
type Reauther interface {
	Reauth(ctx context.Context, failed *http.Request) error
}

// Preparer is implemented by schemes that can get their credential ahead
// of signing (oauth2 fetches or loads its token), so the engine can do it
// before a request waits for a rate-limit slot and sign right after.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// ErrNotLoggedIn is returned (wrapped) by an authorization_code
// Authenticator when the TokenStore holds no token for the integration.
var ErrNotLoggedIn = errors.New("not logged in")

// Option configures [New] and [StartLogin].
type Option func(*options)

type options struct {
	client      *http.Client
	now         func() time.Time
	store       TokenStore
	noStore     string // NoTokenStore's reason, when that was given
	integration string
	hint        string
}

// WithHTTPClient sets the client used to call oauth2 token endpoints. The
// default is a client with a 30 second timeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithClock sets the clock used for HMAC timestamps and token expiry.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTokenStore sets where oauth2 tokens are kept. Required by
// authorization_code (Authenticator and StartLogin); optional for
// client_credentials, where it lets a token outlive the run. A caller
// without a store may pass [NoTokenStore] with its own explanation.
func WithTokenStore(s TokenStore) Option { return func(o *options) { o.store = s } }

// WithIntegration names the integration in user-facing hints, such as
// "not logged in: run plumb auth login <name>".
func WithIntegration(name string) Option { return func(o *options) { o.integration = name } }

// WithLoginHint sets what an authorization_code error tells the user to do
// when there is no usable token (default: "log in to <integration> to get
// a token"). A CLI names its login command here.
func WithLoginHint(hint string) Option { return func(o *options) { o.hint = hint } }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if ns, ok := o.store.(noTokenStore); ok {
		o.store, o.noStore = nil, ns.reason
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

func (o options) loginHint() string {
	name := o.integration
	if name == "" {
		name = "<integration>"
	}
	if o.hint != "" {
		return o.hint
	}
	return "log in to " + name + " to get a token"
}

// New validates cfg and returns the Authenticator for its scheme. Errors
// name the missing or invalid field (e.g. "auth: oauth2 needs token_url")
// and never include secret values. New does no I/O: tokens are fetched or
// loaded by the first Apply.
//
// The oauth2 and rotate authenticators also implement [Reauther].
func New(cfg Config, opts ...Option) (Authenticator, error) {
	o := buildOptions(opts)
	switch cfg.Type {
	case TypeAPIKey:
		return newAPIKey(cfg)
	case TypeBasic:
		return newBasic(cfg)
	case TypeBearer:
		return newBearer(cfg)
	case TypeOAuth2:
		return newOAuth2(cfg, o)
	case TypeHMAC:
		return newHMAC(cfg, o)
	case TypeRotate:
		return newRotate(cfg)
	case "":
		return nil, errors.New("auth: needs type (api_key, basic, bearer, oauth2, hmac or rotate)")
	default:
		return nil, fmt.Errorf("auth: unknown type %q (want api_key, basic, bearer, oauth2, hmac or rotate)", cfg.Type)
	}
}

func checkHeaderName(scheme, field, name string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("auth: %s %s %q is not a valid header name", scheme, field, name)
	}
	return nil
}

// checkSecretValue validates a secret destined for a header without
// revealing it.
func checkSecretValue(scheme, field, v string) error {
	if v == "" {
		return fmt.Errorf("auth: %s needs %s", scheme, field)
	}
	if !httpguts.ValidHeaderFieldValue(v) {
		return fmt.Errorf("auth: %s %s contains control characters (e.g. a line break)", scheme, field)
	}
	return nil
}

func checkURL(scheme, field, raw string) error {
	if raw == "" {
		return fmt.Errorf("auth: %s needs %s", scheme, field)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("auth: %s %s must be an absolute http(s) URL", scheme, field)
	}
	return nil
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// tokenFromHeader returns the credential in an "<Type> <token>" header value.
func tokenFromHeader(v string) string {
	if i := strings.IndexByte(v, ' '); i >= 0 {
		return v[i+1:]
	}
	return v
}
