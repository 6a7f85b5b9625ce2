package steps

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Integration is one integration file: what it needs configured and the
// steps it runs for each lead.
type Integration struct {
	// File is the path the integration was loaded from; it prefixes every
	// position.
	File string `yaml:"-"`
	// Version is the file format version; always 1.
	Version int `yaml:"version,required"`
	// Name is the integration's name.
	Name        String `yaml:"name,required"`
	Description string `yaml:"description"`
	// Include lists shared fragment files (settings, auth, http, vars,
	// retry, deadline) merged under this file's own keys; paths are
	// relative to this file.
	Include []String `yaml:"include"`
	// Settings are what the integration needs configured (credentials
	// schema), by setting name. Templates read them as settings.NAME.
	Settings Map[*Setting] `yaml:"settings"`
	// Auth signs every request of every step unless a step says otherwise.
	Auth *Auth `yaml:"auth"`
	// Vars are values computed once per lead before the first step
	// (templates, typed), read as vars.<name>; each may use earlier ones.
	Vars Map[Value] `yaml:"vars"`
	// HTTP tunes the plan's connections.
	HTTP *HTTP `yaml:"http"`
	// Deadline bounds a whole flow for one lead (0: none beyond the steps\').
	Deadline time.Duration `yaml:"deadline"`
	// Retry rules apply to every step after the step's own rules and
	// before the defaults.
	Retry []*RetryRule `yaml:"retry"`
	// Limits bound the requests of all the integration's steps together
	// (a partner's contract), shared by every lead of a runner.
	Limits *Limits `yaml:"limits"`
	// Steps are the HTTP calls made for each lead, in order.
	Steps []*Step `yaml:"steps,required"`
	// Source pulls the leads from an API instead of the input (plumb sync).
	Source *Source `yaml:"source"`
	// Webhook receives signed deliveries (plumb serve); each event runs
	// through the steps as the lead.
	Webhook *Webhook `yaml:"webhook"`
	// Callback tells a URL each lead's result or each batch's summary
	// (plumb serve).
	Callback *Callback `yaml:"callback"`
	// History says what plumb serve's lead history keeps of this
	// integration's leads beyond their results.
	History *History `yaml:"history"`
	// Tests are stored test cases (read by `plumb test`), kept as YAML.
	Tests *Value `yaml:"tests"`
	Pos   Pos    `yaml:"-"`
}

// Setting declares one configuration value the integration needs, such as an
// API key or a base URL.
type Setting struct {
	Description string `yaml:"description"`
	// Required settings must have a value (given, from Env, or Default)
	// before any lead runs.
	Required bool `yaml:"required"`
	// Secret settings are never shown in logs, errors or results.
	Secret bool `yaml:"secret"`
	// Default is used when no value is given.
	Default any `yaml:"default"`
	// Env names an environment variable the value is read from when no
	// value is given explicitly.
	Env string `yaml:"env"`
	// Type is what the value is (see [SettingTypes]); given strings are
	// converted.
	Type SettingType `yaml:"type"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
	Pos    Pos            `yaml:"-"`
}

// Step is one HTTP call and what to make of its answer.
type Step struct {
	// Name is letters, digits and _; later steps read its captures as
	// steps.NAME.FIELD.
	Name        String `yaml:"name"`
	Description string `yaml:"description"`
	// Parallel makes this item a group of steps run concurrently; such an
	// item has no other keys but fail_fast.
	Parallel []*Step `yaml:"parallel"`
	// FailFast cancels the rest of a parallel group when one of its steps
	// fails or errors.
	FailFast bool `yaml:"fail_fast"`
	// When is a condition; when it does not hold the step is skipped.
	When String `yaml:"when"`
	// Vars are computed before the request, like the integration's.
	Vars    Map[Value] `yaml:"vars"`
	Request *Request   `yaml:"request"`
	// Variants route the request: the first whose when holds (or the
	// last, unconditioned one) sets url, timeout, headers and auth.
	Variants []*Variant `yaml:"variants"`
	// Cache reuses a successful answer for the same key within TTL.
	Cache *ResponseCache `yaml:"cache"`
	// Batch sends one request for many leads.
	Batch *Batch `yaml:"batch"`
	// Auth overrides the integration's auth for this step; type: none
	// sends the step without credentials.
	Auth *Auth `yaml:"auth"`
	// Timeout bounds one try (connect, send, read the whole response).
	Timeout time.Duration `yaml:"timeout"`
	// Deadline bounds all tries of the step, waits and fallbacks included.
	Deadline time.Duration `yaml:"deadline"`
	// Retry rules, matched in order before the documented defaults.
	Retry []*RetryRule `yaml:"retry"`
	// Fallback links, tried in order once the primary request gives up.
	Fallback []*Fallback `yaml:"fallback"`
	// OnError is what an error of this step does to the flow (see
	// [OnErrors]).
	OnError OnError `yaml:"on_error"`
	// MaxAttempts caps the tries of this step's request whatever the
	// rules say, the first included: 1 sends it once (no retry, no
	// re-authentication).
	MaxAttempts int `yaml:"max_attempts"`
	// Limits bound this step's requests (on top of the integration's).
	Limits *Limits `yaml:"limits"`
	// Breaker fails the step fast, straight to its fallback chain, after
	// consecutive errors, until a cool-down has passed.
	Breaker *Breaker `yaml:"breaker"`
	// FollowRedirects is which redirects the step follows (see
	// [RedirectPolicies]).
	FollowRedirects RedirectPolicy `yaml:"follow_redirects"`
	// Response says how to read the answer.
	Response Response `yaml:"response"`
	// Namespaces maps XPath prefixes to namespace URIs for xpath captures.
	Namespaces map[string]string `yaml:"namespaces"`
	// Capture extracts values from the response.
	Capture Map[*Capture] `yaml:"capture"`
	// Outcome turns the response into success, failure or error.
	Outcome Outcome `yaml:"outcome"`
	// Append writes values onto the lead: keys are (dotted) lead field
	// names, values are structured templates.
	Append Map[Value] `yaml:"append"`
	Pos    Pos        `yaml:"-"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
}

// Request is the HTTP request of a step. Every string is a template.
type Request struct {
	// Method defaults to GET, or POST when there is a body.
	Method String `yaml:"method"`
	URL    String `yaml:"url,required"`
	// Query parameters are appended in order, URL-encoded.
	Query   Map[String] `yaml:"query"`
	Headers Map[String] `yaml:"headers"`
	Body    *Body       `yaml:"body"`
	Pos     Pos         `yaml:"-"`
}

// Body is a request body; exactly one kind is set.
type Body struct {
	// JSON is either a structured value whose string leaves are templates,
	// or a string holding JSON text with template actions.
	JSON *Value `yaml:"json"`
	// Form is sent as application/x-www-form-urlencoded.
	Form Map[String] `yaml:"form"`
	// XML is a template whose actions are XML-escaped (SOAP is XML plus headers).
	XML String `yaml:"xml"`
	// Text is a template sent as is.
	Text String `yaml:"text"`
	// ContentType overrides the Content-Type the body kind implies.
	ContentType String `yaml:"content_type"`
	Pos         Pos    `yaml:"-"`
}

// Response says how a step reads its answer.
type Response struct {
	// Format is how the body is read (see [ResponseFormats]).
	Format ResponseFormat `yaml:"format"`
	// MaxBytes caps the response body read (default 10 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	Pos      Pos   `yaml:"-"`
}

// Capture is one value extracted from a response. Exactly one of JSON,
// XPath, Split, Regex, Header, Status is set.
type Capture struct {
	JSON   string `yaml:"json"`
	XPath  string `yaml:"xpath"`
	Split  string `yaml:"split"`
	Index  int    `yaml:"index"`
	Regex  string `yaml:"regex"`
	Group  string `yaml:"group"`
	Header string `yaml:"header"`
	Status bool   `yaml:"status"`
	All    bool   `yaml:"all"`
	Trim   *bool  `yaml:"trim"`
	// Type converts the value (see [CaptureTypes]); a value that does not
	// convert is an error outcome.
	Type CaptureType `yaml:"type"`
	// Default is used when the value is not in the response.
	Default any `yaml:"default"`
	// Required makes a missing value an error outcome.
	Required bool `yaml:"required"`
	// Redact marks the value as a secret (a token): it is masked in
	// results, logs and dumps, in every encoding, for the rest of the lead.
	Redact bool `yaml:"redact"`
	Pos    Pos  `yaml:"-"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
}

// At is the position of the value of key, or of the capture when the key
// is absent.
func (c *Capture) At(key string) Pos {
	if p, ok := c.KeyPos[key]; ok {
		return p
	}
	return c.Pos
}

// Outcome rules. Without rules a 2xx answer is a success, a 4xx a failure
// and anything else an error.
type Outcome struct {
	// FailureWhen is a condition that makes the step a failure (the partner
	// said no).
	FailureWhen String `yaml:"failure_when"`
	// ErrorWhen is a condition that makes the step an error (no usable
	// answer), for example a 200 whose body says it failed.
	ErrorWhen String `yaml:"error_when"`
	// Reason is a template for the reason reported with a failure or error.
	Reason String `yaml:"reason"`
	Pos    Pos    `yaml:"-"`
}

// String is a scalar kept with its position; templates and conditions are
// Strings so their errors can point into the file.
type String struct {
	Value string
	Pos   Pos
	set   bool
	tag   string // the YAML tag of the scalar (!!str, !!int, ...)
	block block  // a block scalar's place in the file (nil: not one, or not known)
}

// IsSet reports whether the key was present in the file.
func (s String) IsSet() bool { return s.set }

func (s *String) decodeNode(d *decoder, n *yaml.Node, what string) {
	s.Pos = d.pos(n)
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "quote the value if it is meant as text", "%s must be a string, got %s", what, kindName(n))
		return
	}
	if n.Tag == "!!null" {
		return
	}
	s.Value, s.set, s.tag, s.block = n.Value, true, n.Tag, d.lines.blockOf(n)
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		// block scalars start on the line after the indicator
		s.Pos.Line++
		s.Pos = s.At(1, 1) // and at their indentation
	}
}

// Entry is one key of an ordered mapping, with its position.
type Entry[T any] struct {
	Key   string
	Pos   Pos
	Value T
}

// Map is a YAML mapping that keeps the order and positions of its keys.
// Its values are decoded as fields are (test cases use it with their own
// value types).
type Map[T any] []Entry[T]

// Get returns the value for key.
func (m Map[T]) Get(key string) (T, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	var zero T
	return zero, false
}

// Has reports whether the map holds key.
func (m Map[T]) Has(key string) bool {
	_, ok := m.Get(key)
	return ok
}

// Keys returns the map's keys in order.
func (m Map[T]) Keys() []string {
	keys := make([]string, len(m))
	for i, e := range m {
		keys[i] = e.Key
	}
	return keys
}

func (m *Map[T]) decodeNode(d *decoder, n *yaml.Node, what string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "%s must be a mapping, got %s", what, kindName(n))
		return
	}
	out := make(Map[T], 0, len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(k, "", "%s: keys must be plain names", what)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "", "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		e := Entry[T]{Key: k.Value, Pos: d.pos(k)}
		d.decode(n.Content[i+1], reflectValue(&e.Value), what+"."+k.Value)
		out = append(out, e)
	}
	*m = out
}

// RetryRule says what to do when a try ends a certain way.
type RetryRule struct {
	// On lists what the rule matches: status codes (429), classes (5xx),
	// timeout, connection, error_when, failure_when.
	On []String `yaml:"on,required"`
	// Action is what the rule does when it matches (see [RetryActions]).
	Action RetryAction `yaml:"action,required"`
	// MaxAttempts caps the tries of the request, the first included
	// (retry only; default 3).
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff shapes the waits between retries.
	Backoff *Backoff `yaml:"backoff"`
	// RetryAfter is what the rule makes of a Retry-After header (see
	// [RetryAfterPolicies]).
	RetryAfter RetryAfterPolicy `yaml:"retry_after"`
	// RetryAfterMax is the longest Retry-After honoured (default 60s): a
	// partner asking for a longer wait is not retried (it would refuse an
	// earlier try), the step gives up. Independent of backoff.max.
	RetryAfterMax time.Duration `yaml:"retry_after_max"`
	Pos           Pos           `yaml:"-"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
}

// Backoff is exponential: initial, then ×multiplier per retry, capped at max.
type Backoff struct {
	Initial    time.Duration `yaml:"initial"`
	Max        time.Duration `yaml:"max"`
	Multiplier float64       `yaml:"multiplier"`
	// Jitter (default true) spreads each wait over [wait/2, wait].
	Jitter *bool `yaml:"jitter"`
	Pos    Pos   `yaml:"-"`
}

// Fallback is one link of a fallback chain; exactly one kind is set
// (Flag goes with Defaults).
type Fallback struct {
	Request  *RequestOverride `yaml:"request"`
	Cache    *CacheLink       `yaml:"cache"`
	Defaults Map[Value]       `yaml:"defaults"`
	// Flag names a lead field set to true when Defaults answered, such as
	// manual_review.
	Flag string    `yaml:"flag"`
	Skip *SkipLink `yaml:"skip"`
	Pos  Pos       `yaml:"-"`
}

// RequestOverride is a secondary request: the primary with these changes.
type RequestOverride struct {
	Method  String        `yaml:"method"`
	URL     String        `yaml:"url"`
	Headers Map[String]   `yaml:"headers"`
	Timeout time.Duration `yaml:"timeout"`
	Pos     Pos           `yaml:"-"`
}

// CacheLink answers with the last known good captures for the same key.
type CacheLink struct {
	MaxAge time.Duration `yaml:"max_age,required"`
	// Key is a template; by default the step's rendered method, URL and body.
	Key String `yaml:"key"`
	Pos Pos    `yaml:"-"`
}

// SkipLink skips the step with a note.
type SkipLink struct {
	Note String `yaml:"note"`
	Pos  Pos    `yaml:"-"`
}

// Auth is an auth section: the keys of [AuthConfig], its type one of
// [AuthTypes]. Its string values are
// templates over settings (lead data never chooses credentials), rendered
// once per run, except message, which is the HMAC signing template.
type Auth struct {
	AuthConfig `yaml:",inline"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
	Pos    Pos            `yaml:"-"`
}

// AuthConfig holds the keys of an auth section as written in the file;
// package auth's Config is this type (one declaration for the file, its
// schema and the schemes). YAML keys are the snake_case forms of the Go
// names (token_url, client_id, signature_header, ...).
type AuthConfig struct {
	// Type selects the scheme (see [AuthTypes]).
	Type string `yaml:"type" json:"type"`

	// In is where an api_key goes: "header" (default) or "query".
	In string `yaml:"in" json:"in,omitempty"`
	// Name is the api_key header name (default X-API-Key) or query
	// parameter name (default api_key).
	Name string `yaml:"name" json:"name,omitempty"`
	// Value is the api_key itself.
	Value string `yaml:"value" json:"value,omitempty"`

	// Username is the basic-auth user name.
	Username string `yaml:"username" json:"username,omitempty"`
	// Password is the basic-auth password (may be empty).
	Password string `yaml:"password" json:"password,omitempty"`

	// Token is the bearer token.
	Token string `yaml:"token" json:"token,omitempty"`

	// Grant is the oauth2 grant: "client_credentials" (default) or
	// "authorization_code".
	Grant string `yaml:"grant" json:"grant,omitempty"`
	// TokenURL is the oauth2 token endpoint.
	TokenURL string `yaml:"token_url" json:"token_url,omitempty"`
	// AuthURL is the oauth2 authorization endpoint (authorization_code only).
	AuthURL string `yaml:"auth_url" json:"auth_url,omitempty"`
	// RedirectURL is the loopback callback of an authorization_code login.
	// Empty means http://127.0.0.1:<free port>/callback, chosen at login.
	// When set it must be an http URL on a loopback host; its port is the
	// one the login listens on. The same value must be used for the
	// authorization request and the code exchange, which StartLogin does.
	RedirectURL string `yaml:"redirect_url" json:"redirect_url,omitempty"`
	// ClientID is the oauth2 client identifier.
	ClientID string `yaml:"client_id" json:"client_id,omitempty"`
	// ClientSecret is the oauth2 client secret (required for
	// client_credentials, optional for authorization_code with PKCE).
	ClientSecret string `yaml:"client_secret" json:"client_secret,omitempty"`
	// Scopes are the requested oauth2 scopes.
	Scopes []string `yaml:"scopes" json:"scopes,omitempty"`
	// Params are extra oauth2 parameters (e.g. audience). For
	// client_credentials they are sent to the token endpoint; for
	// authorization_code they are added to the authorization URL and the
	// code exchange.
	Params map[string]string `yaml:"params" json:"params,omitempty"`
	// AuthStyle is how the client authenticates to the token endpoint:
	// "header" (HTTP Basic), "body" (form parameters) or "" (auto-detect:
	// header first, then body).
	AuthStyle string `yaml:"auth_style" json:"auth_style,omitempty"`

	// Secret is the HMAC key.
	Secret string `yaml:"secret" json:"secret,omitempty"`
	// Algorithm is the HMAC hash: "sha256" (default) or "sha512".
	Algorithm string `yaml:"algorithm" json:"algorithm,omitempty"`
	// Encoding of the signature: "hex" (default), "base64" (standard,
	// padded) or "base64url" (URL-safe, unpadded).
	Encoding string `yaml:"encoding" json:"encoding,omitempty"`
	// SignatureHeader receives the signature (default X-Signature).
	SignatureHeader string `yaml:"signature_header" json:"signature_header,omitempty"`
	// TimestampHeader receives the timestamp (default X-Timestamp).
	TimestampHeader string `yaml:"timestamp_header" json:"timestamp_header,omitempty"`
	// TimestampFormat is "unix" (default, seconds), "unix_ms" or "rfc3339"
	// (UTC).
	TimestampFormat string `yaml:"timestamp_format" json:"timestamp_format,omitempty"`
	// Message is a Go text/template producing the signed string. Fields:
	// .Method, .Path (escaped path as sent), .Query (raw query string),
	// .Timestamp (as sent in TimestampHeader), .Body (request body) and
	// .Headers (map of canonical header name to value, holding exactly the
	// SignedHeaders; use {{index .Headers "Content-Type"}}). Default:
	// "{{.Method}}{{.Path}}{{.Timestamp}}{{.Body}}".
	Message string `yaml:"message" json:"message,omitempty"`
	// SignedHeaders are the headers made available to Message in .Headers.
	SignedHeaders []string `yaml:"signed_headers" json:"signed_headers,omitempty"`
	// Prefix is put before the value written in the header: the signature
	// for hmac (e.g. "sha256="), the token for rotate (e.g. "Bearer ").
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`

	// Tokens are the rotate credentials, used round robin.
	Tokens []string `yaml:"tokens" json:"tokens,omitempty"`

	// Header is the header carrying the credential for bearer and oauth2
	// (default Authorization, value "Bearer <token>") and rotate (default
	// X-Auth-Token, value Prefix+token).
	Header string `yaml:"header" json:"header,omitempty"`
}

// Variant is one route of a step's request.
type Variant struct {
	When    String        `yaml:"when"`
	Method  String        `yaml:"method"`
	URL     String        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// Query parameters are added to the request's (same name: replaced).
	Query   Map[String] `yaml:"query"`
	Headers Map[String] `yaml:"headers"`
	// Body replaces the request's body.
	Body *Body `yaml:"body"`
	Auth *Auth `yaml:"auth"`
	Pos  Pos   `yaml:"-"`
}

// ResponseCache reuses a step's successful captures for the same key.
type ResponseCache struct {
	Key String        `yaml:"key,required"`
	TTL time.Duration `yaml:"ttl,required"`
	Pos Pos           `yaml:"-"`
}

// Batch collects leads and sends them in one request.
type Batch struct {
	// Size is the most leads in one request (flushed when reached).
	Size int `yaml:"size,required"`
	// Wait is the longest a lead waits for its batch to fill.
	Wait time.Duration `yaml:"wait,required"`
	// Results is the gjson path of the list of results in the response
	// (empty: the body is the list).
	Results string `yaml:"results"`
	// ID is the gjson path of a result's lead id, inside one result.
	ID string `yaml:"id,required"`
	// LeadID is a template giving a lead's id (default "{{lead.id}}").
	LeadID String `yaml:"lead_id"`
	Pos    Pos    `yaml:"-"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
}

// At is the position of the value of key, or of the batch when the key is
// absent.
func (b *Batch) At(key string) Pos {
	if p, ok := b.KeyPos[key]; ok {
		return p
	}
	return b.Pos
}

// HTTP tunes the connections of an integration.
type HTTP struct {
	MaxConnsPerHost int           `yaml:"max_conns_per_host"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	// HTTP2 enables HTTP/2 (default true).
	HTTP2 *bool `yaml:"http2"`
	// Gzip compresses request bodies.
	GzipRequests bool `yaml:"gzip_requests"`
	// GzipResponses asks for and decodes gzip responses (default true).
	GzipResponses *bool `yaml:"gzip_responses"`
	// TLS configures client certificates (mTLS), extra CAs and versions.
	TLS *TLS `yaml:"tls"`
	// AllowHosts lists the origins lead data (or captures, vars) may
	// choose in a request URL: [http(s)://]host[:port] or *.suffix, https
	// on 443 unless the entry says otherwise. Without it only literals and
	// settings write a URL's scheme, host and port.
	AllowHosts []string `yaml:"allow_hosts"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
	Pos    Pos            `yaml:"-"`
}

// TLS is how the integration's connections do TLS. File names may be
// templates over settings; relative ones are read from the integration
// file's directory, once, when a runner is bound.
type TLS struct {
	// CAFile is a PEM bundle of CAs trusted besides the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and its key (PEM),
	// sent when the server asks for one (mTLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is the lowest TLS version accepted (see [TLSVersions]).
	MinVersion TLSVersion `yaml:"min_version"`
	// ServerName overrides the name the server certificate is checked
	// against (and sent as SNI).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. Only for tests;
	// every runner bound with it logs a warning.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	Pos                Pos  `yaml:"-"`
}

// Limits are client-side limits on requests: a rate (with a burst) and a
// cap on requests in flight. Waiting for a slot respects the step's
// deadline and the caller's context.
type Limits struct {
	// Rate is requests per second, minute or hour: "10/s", "600/m", "0.5/s".
	Rate string `yaml:"rate"`
	// Burst is how many requests may go at once when the rate allows
	// (default 1).
	Burst int `yaml:"burst"`
	// MaxInFlight caps the requests waiting for an answer at once.
	MaxInFlight int `yaml:"max_in_flight"`
	Pos         Pos `yaml:"-"`
}

// Breaker is a circuit breaker: after Failures consecutive errors (default
// 5) the step fails fast for Cooldown (default 30s) — no request is sent,
// the fallback chain answers — then one probe request is let through: a
// success closes the breaker, an error opens it again.
type Breaker struct {
	// Failures is how many consecutive step errors open the breaker
	// (default 5).
	Failures int `yaml:"failures"`
	// Cooldown is how long it stays open before one probe (default 30s).
	Cooldown time.Duration `yaml:"cooldown"`
	Pos      Pos           `yaml:"-"`
}

// String renders the section with every secret (Value, Password, Token,
// ClientSecret, Secret, Tokens) replaced by [REDACTED], so logging it with
// %v or %+v does not leak credentials.
func (c AuthConfig) String() string {
	type plain AuthConfig // no String method: no recursion
	r := plain(c)
	hide := func(s *string) {
		if *s != "" {
			*s = "[REDACTED]"
		}
	}
	hide(&r.Value)
	hide(&r.Password)
	hide(&r.Token)
	hide(&r.ClientSecret)
	hide(&r.Secret)
	if len(r.Tokens) > 0 {
		r.Tokens = make([]string, len(c.Tokens))
		for i := range r.Tokens {
			r.Tokens[i] = "[REDACTED]"
		}
	}
	return fmt.Sprintf("%+v", r)
}

// GoString is String, for %#v.
func (c AuthConfig) GoString() string { return "auth.Config" + c.String() }
