package steps

import "strings"

// This file is the vocabulary of the file format: every key whose value is
// one of a fixed set is declared here once, as a typed value with its
// constants and an Enum listing each value with what it means. The
// validator checks against these declarations, the engine and source
// switch on the constants, `plumb schema` turns them into JSON Schema
// enums (with the docs in the descriptions) and the reference tables of
// docs/format.md are generated from them (a test fails when any of these
// disagree).

// Methods are the HTTP methods a request may use (request.method and a
// variant's method, upper case or not; in test cases the method of a
// route and of expect.requests).
var Methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// Choice is one value of an enum of the file format and what it means.
type Choice[T ~string] struct {
	Value T
	Doc   string
}

// Enum declares one enum of the file format.
type Enum[T ~string] struct {
	// Name names the enum in docs/format.md's generated tables
	// (<!-- vocab:NAME -->), e.g. retry-action.
	Name string
	// Fields are the keys that take it, as Type.yaml_key of the model
	// (RetryRule.action); the JSON Schema puts the enum on each.
	Fields []string
	// Default is the value an absent key means ("": none of the values).
	Default T
	// Unset says what an absent key means when there is no Default.
	Unset string
	// Extension, when set, is a prefix of further values the embedder
	// defines (auth type x-NAME), and ExtensionDoc what they are.
	Extension, ExtensionDoc string
	// Choices are the values, in the order the docs list them.
	Choices []Choice[T]
}

// Values returns the declared values in order.
func (e Enum[T]) Values() []T {
	out := make([]T, len(e.Choices))
	for i, c := range e.Choices {
		out[i] = c.Value
	}
	return out
}

// Has reports whether v is a declared value (an extension included).
func (e Enum[T]) Has(v T) bool {
	for _, c := range e.Choices {
		if c.Value == v {
			return true
		}
	}
	return e.Extension != "" && strings.HasPrefix(string(v), e.Extension)
}

// Valid reports whether v may be written: a declared value, or empty
// (the key left out).
func (e Enum[T]) Valid(v T) bool { return v == "" || e.Has(v) }

// Hint lists the values for an error message: "one of a, b, c".
func (e Enum[T]) Hint() string {
	names := make([]string, len(e.Choices))
	for i, c := range e.Choices {
		names[i] = string(c.Value)
	}
	return "one of " + strings.Join(names, ", ")
}

// Vocab is the enum without its Go type, for tools.
func (e Enum[T]) Vocab() Vocab {
	v := Vocab{Name: e.Name, Fields: e.Fields, Default: string(e.Default), Unset: e.Unset,
		Extension: e.Extension, ExtensionDoc: e.ExtensionDoc}
	for _, c := range e.Choices {
		v.Choices = append(v.Choices, Choice[string]{Value: string(c.Value), Doc: c.Doc})
	}
	return v
}

// HistoryExchanges says which leads keep their tries' masked requests and
// responses in plumb serve's lead history (history.exchanges).
type HistoryExchanges string

// The history exchange modes.
const (
	HistoryExchangesNone   HistoryExchanges = "none"
	HistoryExchangesFailed HistoryExchanges = "failed"
	HistoryExchangesAll    HistoryExchanges = "all"
)

// HistoryExchangeModes declares history.exchanges.
var HistoryExchangeModes = Enum[HistoryExchanges]{
	Name: "history-exchanges", Fields: []string{"History.exchanges"}, Default: HistoryExchangesNone,
	Choices: []Choice[HistoryExchanges]{
		{HistoryExchangesNone, "keep each try's status, class, error, rule and duration only"},
		{HistoryExchangesFailed, "also keep the masked request and response of every try of a lead whose outcome is failure or error"},
		{HistoryExchangesAll, "also keep them for every lead (costs storage: up to 64 KiB a lead)"},
	},
}

// Vocab is an [Enum] of any value type: what the schema generator and the
// docs read.
type Vocab = Enum[string]

// Vocabulary returns every enum of the file format.
func Vocabulary() []Vocab {
	return []Vocab{
		SettingTypes.Vocab(), AuthTypes.Vocab(), APIKeyIns.Vocab(), OAuth2Grants.Vocab(), OAuth2AuthStyles.Vocab(),
		HMACAlgorithms.Vocab(), HMACEncodings.Vocab(), HMACTimestampFormats.Vocab(), ResponseFormats.Vocab(), CaptureTypes.Vocab(),
		OnErrors.Vocab(), RedirectPolicies.Vocab(), RetryActions.Vocab(), RetryAfterPolicies.Vocab(),
		TLSVersions.Vocab(), PaginateTypes.Vocab(), ScheduleMisses.Vocab(), WebhookPresets.Vocab(), WebhookAlgorithms.Vocab(),
		WebhookEncodings.Vocab(), Outcomes.Vocab(), CallbackEvents.Vocab(), HistoryExchangeModes.Vocab(),
	}
}

// SettingType is the type of a setting (settings.NAME.type).
type SettingType string

// The setting types.
const (
	SettingString SettingType = "string"
	SettingNumber SettingType = "number"
	SettingBool   SettingType = "bool"
	SettingList   SettingType = "list"
	SettingObject SettingType = "object"
)

// SettingTypes declares settings.NAME.type.
var SettingTypes = Enum[SettingType]{
	Name: "setting-type", Fields: []string{"Setting.type"}, Default: SettingString,
	Choices: []Choice[SettingType]{
		{SettingString, "text; a number or boolean given is turned into its text"},
		{SettingNumber, "a number; a given string is parsed"},
		{SettingBool, "true or false; a given string is parsed (true, false, 1, 0)"},
		{SettingList, "a list (YAML or JSON)"},
		{SettingObject, "a mapping (YAML or JSON)"},
	},
}

// AuthType is an auth scheme (auth.type).
type AuthType string

// The auth schemes.
const (
	AuthAPIKey AuthType = "api_key"
	AuthBasic  AuthType = "basic"
	AuthBearer AuthType = "bearer"
	AuthOAuth2 AuthType = "oauth2"
	AuthHMAC   AuthType = "hmac"
	AuthRotate AuthType = "rotate"
	AuthNone   AuthType = "none"
)

// AuthTypes declares auth.type.
var AuthTypes = Enum[AuthType]{
	Name: "auth-type", Fields: []string{"Auth.type"},
	Extension: "x-", ExtensionDoc: "x-NAME: a custom scheme the embedder registers with engine.WithAuthScheme",
	Choices: []Choice[AuthType]{
		{AuthAPIKey, "an API key in a header or a query parameter"},
		{AuthBasic, "HTTP Basic authentication"},
		{AuthBearer, "a fixed bearer token"},
		{AuthOAuth2, "an OAuth2 access token (client_credentials or authorization_code), shared by all leads and renewed before expiry"},
		{AuthHMAC, "an HMAC signature of the request, re-signed on every try"},
		{AuthRotate, "a list of tokens used round robin; one rejected with 401 is skipped from then on"},
		{AuthNone, "no credentials (a step's own auth, overriding the integration's)"},
	},
}

// AuthKeys lists the keys each built-in auth type takes besides type; a
// key of another type in its section is an error. An x- scheme takes any
// key (its constructor reads what it needs).
var AuthKeys = map[AuthType][]string{
	AuthAPIKey: {"in", "name", "value"},
	AuthBasic:  {"username", "password"},
	AuthBearer: {"token", "header"},
	AuthOAuth2: {"grant", "token_url", "auth_url", "redirect_url", "client_id", "client_secret", "scopes", "params", "auth_style", "header"},
	AuthHMAC:   {"secret", "algorithm", "encoding", "signature_header", "timestamp_header", "timestamp_format", "message", "signed_headers", "prefix"},
	AuthRotate: {"tokens", "header", "prefix"},
	AuthNone:   {},
}

// APIKeyIn is where an api_key auth puts its key (auth.in).
type APIKeyIn string

// Where an api_key goes.
const (
	APIKeyInHeader APIKeyIn = "header"
	APIKeyInQuery  APIKeyIn = "query"
)

// APIKeyIns declares auth.in.
var APIKeyIns = Enum[APIKeyIn]{
	Name: "auth-api-key-in", Fields: []string{"Auth.in"}, Default: APIKeyInHeader,
	Choices: []Choice[APIKeyIn]{
		{APIKeyInHeader, "in a header, `name` (default X-API-Key)"},
		{APIKeyInQuery, "in a query parameter, `name` (default api_key)"},
	},
}

// OAuth2Grant is an oauth2 auth's grant (auth.grant).
type OAuth2Grant string

// The oauth2 grants.
const (
	GrantClientCredentials OAuth2Grant = "client_credentials"
	GrantAuthorizationCode OAuth2Grant = "authorization_code"
)

// OAuth2Grants declares auth.grant.
var OAuth2Grants = Enum[OAuth2Grant]{
	Name: "auth-oauth2-grant", Fields: []string{"Auth.grant"}, Default: GrantClientCredentials,
	Choices: []Choice[OAuth2Grant]{
		{GrantClientCredentials, "the client's own token, fetched from token_url with client_id and client_secret"},
		{GrantAuthorizationCode, "a user's token from plumb auth login or the install flow, refreshed with its refresh token"},
	},
}

// OAuth2AuthStyle is how an oauth2 client authenticates to its token
// endpoint (auth.auth_style).
type OAuth2AuthStyle string

// The oauth2 client authentication styles.
const (
	AuthStyleHeader OAuth2AuthStyle = "header"
	AuthStyleBody   OAuth2AuthStyle = "body"
)

// OAuth2AuthStyles declares auth.auth_style.
var OAuth2AuthStyles = Enum[OAuth2AuthStyle]{
	Name: "auth-oauth2-auth-style", Fields: []string{"Auth.auth_style"},
	Unset: "auto-detect: header first, then body",
	Choices: []Choice[OAuth2AuthStyle]{
		{AuthStyleHeader, "HTTP Basic with client_id and client_secret"},
		{AuthStyleBody, "client_id and client_secret as form parameters"},
	},
}

// HMACAlgorithm is the hash of an hmac auth (auth.algorithm).
type HMACAlgorithm string

// The hmac auth hashes.
const (
	HMACSHA256 HMACAlgorithm = "sha256"
	HMACSHA512 HMACAlgorithm = "sha512"
)

// HMACAlgorithms declares auth.algorithm.
var HMACAlgorithms = Enum[HMACAlgorithm]{
	Name: "auth-hmac-algorithm", Fields: []string{"Auth.algorithm"}, Default: HMACSHA256,
	Choices: []Choice[HMACAlgorithm]{
		{HMACSHA256, "HMAC-SHA256"},
		{HMACSHA512, "HMAC-SHA512"},
	},
}

// HMACEncoding is how an hmac auth writes its signature (auth.encoding).
type HMACEncoding string

// The hmac auth signature encodings.
const (
	HMACHex       HMACEncoding = "hex"
	HMACBase64    HMACEncoding = "base64"
	HMACBase64URL HMACEncoding = "base64url"
)

// HMACEncodings declares auth.encoding.
var HMACEncodings = Enum[HMACEncoding]{
	Name: "auth-hmac-encoding", Fields: []string{"Auth.encoding"}, Default: HMACHex,
	Choices: []Choice[HMACEncoding]{
		{HMACHex, "lower-case hexadecimal"},
		{HMACBase64, "standard base64, padded"},
		{HMACBase64URL, "URL-safe base64, unpadded"},
	},
}

// HMACTimestampFormat is how an hmac auth writes its timestamp
// (auth.timestamp_format).
type HMACTimestampFormat string

// The hmac auth timestamp formats.
const (
	TimestampUnix    HMACTimestampFormat = "unix"
	TimestampUnixMS  HMACTimestampFormat = "unix_ms"
	TimestampRFC3339 HMACTimestampFormat = "rfc3339"
)

// HMACTimestampFormats declares auth.timestamp_format.
var HMACTimestampFormats = Enum[HMACTimestampFormat]{
	Name: "auth-hmac-timestamp-format", Fields: []string{"Auth.timestamp_format"}, Default: TimestampUnix,
	Choices: []Choice[HMACTimestampFormat]{
		{TimestampUnix, "seconds since 1970"},
		{TimestampUnixMS, "milliseconds since 1970"},
		{TimestampRFC3339, "RFC 3339 in UTC, e.g. 2026-01-02T15:04:05Z"},
	},
}

// ResponseFormat is how a step reads its answer (response.format).
type ResponseFormat string

// The response formats.
const (
	FormatJSON ResponseFormat = "json"
	FormatXML  ResponseFormat = "xml"
	FormatText ResponseFormat = "text"
)

// ResponseFormats declares response.format.
var ResponseFormats = Enum[ResponseFormat]{
	Name: "response-format", Fields: []string{"Response.format"},
	Unset: "decided by the answer's Content-Type; a body that is not in it is read as text",
	Choices: []Choice[ResponseFormat]{
		{FormatJSON, "the body must be JSON: a truncated or garbled 2xx answer is an error"},
		{FormatXML, "the body must be XML: a truncated or garbled 2xx answer is an error"},
		{FormatText, "the body is text, whatever its Content-Type"},
	},
}

// CaptureType is what a captured value is converted to (capture.NAME.type).
type CaptureType string

// The capture types.
const (
	CaptureString CaptureType = "string"
	CaptureNumber CaptureType = "number"
	CaptureInt    CaptureType = "int"
	CaptureBool   CaptureType = "bool"
)

// CaptureTypes declares capture.NAME.type.
var CaptureTypes = Enum[CaptureType]{
	Name: "capture-type", Fields: []string{"Capture.type"},
	Unset: "the value as extracted (a JSON value keeps its type, XML and text are strings)",
	Choices: []Choice[CaptureType]{
		{CaptureString, "text; numbers in plain decimal, objects and lists as JSON"},
		{CaptureNumber, "a number, from a number or a decimal string"},
		{CaptureInt, "a whole number, from an integer-valued number or string (\"45\", \"45.0\")"},
		{CaptureBool, "true or false, from a bool, 1/0 or true/false, yes/no, y/n"},
	},
}

// OnError is what an error of a step does to the flow (on_error).
type OnError string

// The on_error values.
const (
	OnErrorStop     OnError = "stop"
	OnErrorContinue OnError = "continue"
)

// OnErrors declares a step's on_error.
var OnErrors = Enum[OnError]{
	Name: "on-error", Fields: []string{"Step.on_error"}, Default: OnErrorStop,
	Choices: []Choice[OnError]{
		{OnErrorStop, "an error ends the flow"},
		{OnErrorContinue, "the flow goes on to the next step (enrichment that must never block delivery)"},
	},
}

// RedirectPolicy is which redirects a step follows (follow_redirects).
type RedirectPolicy string

// The redirect policies.
const (
	RedirectSameOrigin RedirectPolicy = "same_origin"
	RedirectNone       RedirectPolicy = "none"
	RedirectAny        RedirectPolicy = "any"
)

// RedirectPolicies declares a step's follow_redirects.
var RedirectPolicies = Enum[RedirectPolicy]{
	Name: "follow-redirects", Fields: []string{"Step.follow_redirects"}, Default: RedirectSameOrigin,
	Choices: []Choice[RedirectPolicy]{
		{RedirectSameOrigin, "follow redirects to the same scheme, host and port only; any other 3xx is the answer"},
		{RedirectNone, "follow nothing: a 3xx is the answer"},
		{RedirectAny, "follow anywhere; once the host changes, no header but Accept*, User-Agent and Content-Type, and no body"},
	},
}

// RetryAction is what a retry rule does when it matches (action).
type RetryAction string

// The retry actions.
const (
	ActionRetry    RetryAction = "retry"
	ActionReauth   RetryAction = "reauth"
	ActionFail     RetryAction = "fail"
	ActionFallback RetryAction = "fallback"
	ActionIgnore   RetryAction = "ignore"
	ActionStop     RetryAction = "stop"
)

// RetryActions declares a retry rule's action.
var RetryActions = Enum[RetryAction]{
	Name: "retry-action", Fields: []string{"RetryRule.action"},
	Choices: []Choice[RetryAction]{
		{ActionRetry, "try again after a backoff, up to max_attempts tries in all"},
		{ActionReauth, "drop the credential, get a new one and retry once"},
		{ActionFail, "a failure now, the reason from the body"},
		{ActionFallback, "give up: straight to the fallback chain"},
		{ActionIgnore, "treat the answer as a success"},
		{ActionStop, "end the step as it is: no retry, no fallback"},
	},
}

// RetryAfterPolicy is what a retry rule makes of Retry-After (retry_after).
type RetryAfterPolicy string

// The retry_after values.
const (
	RetryAfterHonor  RetryAfterPolicy = "honor"
	RetryAfterIgnore RetryAfterPolicy = "ignore"
)

// RetryAfterPolicies declares a retry rule's retry_after.
var RetryAfterPolicies = Enum[RetryAfterPolicy]{
	Name: "retry-after", Fields: []string{"RetryRule.retry_after"}, Default: RetryAfterHonor,
	Choices: []Choice[RetryAfterPolicy]{
		{RetryAfterHonor, "wait what Retry-After says (seconds or an HTTP date), up to retry_after_max"},
		{RetryAfterIgnore, "wait the backoff only"},
	},
}

// TLSVersion is the lowest TLS version accepted (http.tls.min_version).
type TLSVersion string

// The TLS versions.
const (
	TLS12 TLSVersion = "1.2"
	TLS13 TLSVersion = "1.3"
)

// TLSVersions declares http.tls.min_version.
var TLSVersions = Enum[TLSVersion]{
	Name: "tls-version", Fields: []string{"TLS.min_version"}, Default: TLS12,
	Choices: []Choice[TLSVersion]{
		{TLS12, "TLS 1.2 and 1.3"},
		{TLS13, "TLS 1.3 only"},
	},
}

// PaginateType is how a source gets its next page (paginate.type).
type PaginateType string

// The pagination types.
const (
	PaginatePage    PaginateType = "page"
	PaginateOffset  PaginateType = "offset"
	PaginateCursor  PaginateType = "cursor"
	PaginateNextURL PaginateType = "next_url"
	PaginateLink    PaginateType = "link"
)

// PaginateTypes declares a source's paginate.type.
var PaginateTypes = Enum[PaginateType]{
	Name: "paginate-type", Fields: []string{"Paginate.type"},
	Choices: []Choice[PaginateType]{
		{PaginatePage, "page.number (from start, default 1) and page.size; the next page is number + 1"},
		{PaginateOffset, "page.offset (from start, default 0) and page.limit (size, required); the next offset adds the records read"},
		{PaginateCursor, "page.cursor from the previous page (cursor: json, xpath or header)"},
		{PaginateNextURL, "the next page's URL from the previous page (next: json, xpath or header)"},
		{PaginateLink, "the RFC 8288 Link: <…>; rel=\"next\" header"},
	},
}

// ScheduleMissed is what a start does about scheduled runs that fell
// while plumb serve was down (source.schedule.missed).
type ScheduleMissed string

// The missed-run policies.
const (
	MissedOnce ScheduleMissed = "once"
	MissedSkip ScheduleMissed = "skip"
)

// ScheduleMisses declares source.schedule.missed.
var ScheduleMisses = Enum[ScheduleMissed]{
	Name: "schedule-missed", Fields: []string{"Schedule.missed"}, Default: MissedOnce,
	Choices: []Choice[ScheduleMissed]{
		{MissedOnce, "one sync runs at start for every run missed (not one per missed time), then the schedule goes on"},
		{MissedSkip, "missed runs are dropped; the next sync runs at the next scheduled time"},
	},
}

// WebhookPreset is a webhook signature scheme (webhook.verify.preset).
type WebhookPreset string

// The webhook presets; package webhook implements them.
const (
	PresetActuallyCare WebhookPreset = "actuallycare"
	PresetStandard     WebhookPreset = "standard-webhooks"
	PresetSvix         WebhookPreset = "svix"
	PresetGitHub       WebhookPreset = "github"
	PresetStripe       WebhookPreset = "stripe"
	PresetHMAC         WebhookPreset = "hmac"
)

// WebhookPresets declares webhook.verify.preset.
var WebhookPresets = Enum[WebhookPreset]{
	Name: "webhook-preset", Fields: []string{"WebhookVerify.preset"},
	Choices: []Choice[WebhookPreset]{
		{PresetActuallyCare, "X-Webhook-Signature: hex HMAC-SHA256 of the body"},
		{PresetStandard, "Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature (whsec_ secrets)"},
		{PresetSvix, "Svix: svix-id, svix-timestamp, svix-signature (whsec_ secrets)"},
		{PresetGitHub, "GitHub: X-Hub-Signature-256, event id X-GitHub-Delivery"},
		{PresetStripe, "Stripe: Stripe-Signature with a signed timestamp"},
		{PresetHMAC, "a generic HMAC: header, prefix, algorithm, encoding, signed, timestamp_header, id_header"},
	},
}

// WebhookAlgorithm is the hash of a generic HMAC webhook
// (webhook.verify.algorithm).
type WebhookAlgorithm string

// WebhookAlgorithms declares webhook.verify.algorithm.
var WebhookAlgorithms = Enum[WebhookAlgorithm]{
	Name: "webhook-algorithm", Fields: []string{"WebhookVerify.algorithm"}, Default: "sha256",
	Choices: []Choice[WebhookAlgorithm]{
		{"sha256", "HMAC-SHA256"},
		{"sha1", "HMAC-SHA1 (legacy senders only)"},
		{"sha512", "HMAC-SHA512"},
	},
}

// WebhookEncoding is how a generic HMAC webhook writes its signature
// (webhook.verify.encoding).
type WebhookEncoding string

// WebhookEncodings declares webhook.verify.encoding.
var WebhookEncodings = Enum[WebhookEncoding]{
	Name: "webhook-encoding", Fields: []string{"WebhookVerify.encoding"}, Default: "hex",
	Choices: []Choice[WebhookEncoding]{
		{"hex", "hexadecimal (either case is accepted)"},
		{"base64", "standard base64, padded"},
		{"base64url", "URL-safe base64, padded"},
	},
}

// OutcomeValue is how a step or a flow ends for a lead; test cases expect
// one (expect.outcome, expect.steps).
type OutcomeValue string

// The outcomes.
const (
	OutcomeSuccess OutcomeValue = "success"
	OutcomeFailure OutcomeValue = "failure"
	OutcomeError   OutcomeValue = "error"
	OutcomeSkip    OutcomeValue = "skip"
)

// Outcomes declares the outcomes of a step or a flow.
var Outcomes = Enum[OutcomeValue]{
	Name: "outcome", Fields: []string{"TestExpect.outcome"},
	Choices: []Choice[OutcomeValue]{
		{OutcomeSuccess, "the partner answered yes (by default a 2xx)"},
		{OutcomeFailure, "the partner said no (by default a 4xx but 401, 407, 408 and 429, or failure_when)"},
		{OutcomeError, "no usable answer: 5xx, timeouts, connections, unreadable bodies, error_when"},
		{OutcomeSkip, "the step's when did not hold (a flow: no step ran)"},
	},
}

// CallbackEvent is what a callback is sent for (callback.events).
type CallbackEvent string

// The callback events.
const (
	CallbackResult CallbackEvent = "result"
	CallbackBatch  CallbackEvent = "batch"
	CallbackAll    CallbackEvent = "all"
)

// CallbackEvents declares callback.events.
var CallbackEvents = Enum[CallbackEvent]{
	Name: "callback-event", Fields: []string{"Callback.events"}, Default: CallbackResult,
	Choices: []Choice[CallbackEvent]{
		{CallbackResult, "each lead's result, as it finishes"},
		{CallbackBatch, "each batch's summary (counts by outcome), once all its leads are done"},
		{CallbackAll, "both"},
	},
}
