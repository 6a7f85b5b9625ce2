package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Preset names accepted in [Config.Preset].
const (
	// PresetStandard is Standard Webhooks (https://www.standardwebhooks.com):
	// HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>", sent as a
	// space-separated list of "v1,<base64>" entries in webhook-signature.
	// Secrets are "whsec_" followed by the base64 key (the prefix is optional).
	PresetStandard = "standard-webhooks"
	// PresetSvix is the Standard Webhooks scheme under Svix's header names
	// svix-id, svix-timestamp and svix-signature.
	PresetSvix = "svix"
	// PresetGitHub is GitHub's scheme: X-Hub-Signature-256 carries
	// "sha256=" and the hex HMAC-SHA256 of the body. GitHub signs neither a
	// timestamp nor an id: the event id comes from X-GitHub-Delivery and the
	// event type from X-GitHub-Event, both unsigned, so [Event.Key] dedupes
	// on the digest of the signed body instead of the delivery id.
	PresetGitHub = "github"
	// PresetStripe is Stripe's scheme: Stripe-Signature carries
	// "t=<unix>,v1=<hex>[,v1=<hex>…]", each v1 being the hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the endpoint secret used verbatim ("whsec_…").
	// The event id and type are read from the verified JSON body.
	PresetStripe = "stripe"
	// PresetActuallyCare is the scheme of seed 000 ("Handling Webhooks"):
	// X-Webhook-Signature carries the bare hex HMAC-SHA256 of the raw body.
	// No timestamp or id is signed; dedupe on the body's event and timestamp
	// (see [Event.Key]). The event type is read from the body's "event".
	PresetActuallyCare = "actuallycare"
	// PresetHMAC is a generic HMAC configured by [Config.Header],
	// [Config.Prefix], [Config.Algorithm], [Config.Encoding], [Config.Signed],
	// [Config.TimestampHeader] and [Config.IDHeader]. Secrets are used
	// verbatim.
	PresetHMAC = "hmac"
)

// presetNames lists the presets in the order error messages show them.
var presetNames = []string{PresetStandard, PresetSvix, PresetGitHub, PresetStripe, PresetActuallyCare, PresetHMAC}

// DefaultTolerance is how far a signed timestamp may lie from the verifier's
// clock, in either direction, when [Config.Tolerance] is zero.
const DefaultTolerance = 5 * time.Minute

// MaxSecrets bounds [Config.Secrets]: each secret costs one HMAC over the
// body of every delivery that does not match an earlier one.
const MaxSecrets = 10

// MaxSignatures bounds how many signatures one delivery may carry in
// schemes with a list (standard-webhooks, svix, stripe); a rotation sends
// two. A delivery with more is refused with [ErrBadSignature].
const MaxSignatures = 32

// Config describes how one hook's deliveries are signed. It comes from the
// operator's trusted configuration (the yaml keys below); [New] checks it.
// Every way of printing or marshalling a Config masks its secrets.
type Config struct {
	// Preset names the scheme: one of the Preset* constants.
	Preset string `yaml:"preset"`
	// Secrets are the active secrets, newest first. A delivery verifies if
	// any of them produced one of its signatures, so a rotation lists the
	// new and the old secret until the old one is retired. [Verifier.Sign]
	// signs with the first (or, for schemes that carry several signatures,
	// with each).
	Secrets []string `yaml:"secrets"`

	// Header is the signature header (PresetHMAC only), e.g. "X-Signature".
	Header string `yaml:"header,omitempty"`
	// Prefix precedes the encoded signature in Header (PresetHMAC only),
	// e.g. "sha256=" or "v0=". Empty means none.
	Prefix string `yaml:"prefix,omitempty"`
	// Algorithm is the HMAC hash (PresetHMAC only): "sha1", "sha256"
	// (default) or "sha512".
	Algorithm string `yaml:"algorithm,omitempty"`
	// Encoding is how the signature is written (PresetHMAC only): "hex"
	// (default, either case accepted), "base64" or "base64url" (padded).
	Encoding string `yaml:"encoding,omitempty"`
	// Signed is the signed content (PresetHMAC only): literal text with the
	// placeholders {body} (the raw body, required), {timestamp} (the value of
	// TimestampHeader as sent) and {id} (the value of IDHeader as sent);
	// "{{" stands for a literal "{". Two placeholders must be separated by
	// literal text, as in "{timestamp}.{body}" or "v0:{timestamp}:{body}".
	// Default "{body}".
	Signed string `yaml:"signed,omitempty"`
	// TimestampHeader carries the signed unix timestamp in seconds
	// (PresetHMAC only; requires {timestamp} in Signed and vice versa).
	TimestampHeader string `yaml:"timestamp_header,omitempty"`
	// IDHeader carries the delivery's event id (PresetHMAC only). It is
	// signed when Signed uses {id}; otherwise it is only read for [Event.ID]
	// (with [Event.IDSigned] false): anyone could change it without breaking
	// the signature, so [Event.Key] does not dedupe on it.
	IDHeader string `yaml:"id_header,omitempty"`
	// Tolerance is how far a signed timestamp may lie from now, in either
	// direction, before the delivery is refused as stale; zero means
	// [DefaultTolerance]. Only for schemes that sign a timestamp
	// (standard-webhooks, svix, stripe, hmac with TimestampHeader).
	Tolerance time.Duration `yaml:"tolerance,omitempty"`
}

// String describes c with its secrets masked, so a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("webhook.Config{Preset:%q Secrets:[%d masked] Header:%q Prefix:%q Algorithm:%q Encoding:%q Signed:%q TimestampHeader:%q IDHeader:%q Tolerance:%v}",
		c.Preset, len(c.Secrets), c.Header, c.Prefix, c.Algorithm, c.Encoding, c.Signed, c.TimestampHeader, c.IDHeader, c.Tolerance)
}

// GoString is [Config.String], so %#v masks the secrets too.
func (c Config) GoString() string { return c.String() }

// maskedConfig is Config as it is shown: every secret replaced by "***".
type maskedConfig struct {
	Preset          string   `json:"preset" yaml:"preset"`
	Secrets         []string `json:"secrets" yaml:"secrets"`
	Header          string   `json:"header,omitempty" yaml:"header,omitempty"`
	Prefix          string   `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	Algorithm       string   `json:"algorithm,omitempty" yaml:"algorithm,omitempty"`
	Encoding        string   `json:"encoding,omitempty" yaml:"encoding,omitempty"`
	Signed          string   `json:"signed,omitempty" yaml:"signed,omitempty"`
	TimestampHeader string   `json:"timestamp_header,omitempty" yaml:"timestamp_header,omitempty"`
	IDHeader        string   `json:"id_header,omitempty" yaml:"id_header,omitempty"`
	Tolerance       string   `json:"tolerance,omitempty" yaml:"tolerance,omitempty"`
}

func (c Config) masked() maskedConfig {
	m := maskedConfig{Preset: c.Preset, Secrets: make([]string, len(c.Secrets)), Header: c.Header, Prefix: c.Prefix,
		Algorithm: c.Algorithm, Encoding: c.Encoding, Signed: c.Signed, TimestampHeader: c.TimestampHeader, IDHeader: c.IDHeader}
	for i := range m.Secrets {
		m.Secrets[i] = "***"
	}
	if c.Tolerance != 0 {
		m.Tolerance = c.Tolerance.String()
	}
	return m
}

// MarshalJSON writes c with the YAML key names and every secret masked as
// "***", so a Config can appear in JSON output without leaking.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.masked()) }

// MarshalYAML is [Config.MarshalJSON] for gopkg.in/yaml.v3.
func (c Config) MarshalYAML() (any, error) { return c.masked(), nil }

// Event is what a verified delivery says about itself, for routing and
// dedupe. Fields the scheme does not provide are empty.
type Event struct {
	// Preset is the verifier's preset.
	Preset string
	// ID is the provider's event or message id: webhook-id / svix-id,
	// X-GitHub-Delivery, the Stripe body's "id", or Config.IDHeader.
	ID string
	// IDSigned reports whether the signature covers ID: webhook-id and
	// svix-id (signed with the timestamp and body), the Stripe body's "id",
	// and Config.IDHeader when Config.Signed uses {id}. X-GitHub-Delivery
	// and an IDHeader outside Signed are not signed: whoever captured a
	// delivery can resend it under a new id (or none), so [Event.Key]
	// ignores such an ID.
	IDSigned bool
	// Type is the event type when the scheme exposes one: X-GitHub-Event,
	// the body's "type" (Stripe, Standard Webhooks) or "event" (seed 000).
	Type string
	// Timestamp is the signed timestamp (zero when the scheme signs none).
	Timestamp time.Time
	// Digest is the lower-case hex SHA-256 of the signed content — exactly
	// the bytes the HMAC covers: the body, and the timestamp and id where
	// the scheme signs them. Every copy of one signed message has the same
	// Digest whatever its unsigned headers say; it depends on no secret.
	Digest string
	// Secret is the index in Config.Secrets of the secret that verified the
	// delivery; anything but 0 means the sender still uses an older secret.
	Secret int
}

// Key returns the raw dedupe key of the event, made only of what the
// signature covers, so that a replay cannot change it:
//
//   - "id:" and ID when the scheme signs the id ([Event.IDSigned]);
//   - otherwise the fallback parts, joined so that different part lists
//     never give the same key. Pass only signed material: fields of the
//     verified body, such as the event name and timestamp seed 000 advises
//     — never an unsigned header;
//   - otherwise "sig:" and [Event.Digest]: the signed content itself, so
//     two deliveries are one event exactly when the same bytes were signed.
//
// It returns "" only for an Event that has none of these (one that did not
// come from [Verifier.Verify]); the caller then cannot dedupe it.
func (e Event) Key(fallback ...string) string {
	if e.ID != "" && e.IDSigned {
		return "id:" + e.ID
	}
	if slices.ContainsFunc(fallback, func(p string) bool { return p != "" }) {
		var b strings.Builder
		b.WriteString("fb")
		for _, p := range fallback {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(len(p)))
			b.WriteByte(':')
			b.WriteString(p)
		}
		return b.String()
	}
	if e.Digest != "" {
		return "sig:" + e.Digest
	}
	return ""
}

// kind is how a scheme carries its signatures.
type kind uint8

const (
	kindSingle   kind = iota // one signature in one header, after an optional prefix
	kindStandard             // space-separated "v1,<base64>" entries
	kindStripe               // "t=<unix>,v1=<hex>,…"
)

// Verifier checks deliveries for one hook. It is immutable and safe for
// concurrent use.
type Verifier struct {
	preset     string
	kind       kind
	keys       [][]byte
	newHash    func() hash.Hash
	enc        encoding
	sigHeader  string
	prefix     string
	tsHeader   string // signed timestamp header (not for stripe, whose t= is in sigHeader)
	idHeader   string // event id header, signed when usesID
	typeHeader string
	signed     []segment
	usesTS     bool // the signed content includes the timestamp
	usesID     bool // the signed content includes the id
	tolerance  time.Duration
	now        func() time.Time
	bodyID     string // top-level body field holding the event id
	bodyType   string // top-level body field holding the event type
}

// New checks cfg and returns its Verifier. now is the clock used for
// timestamp tolerance and for [Verifier.Sign] without a time; nil means
// [time.Now]. Errors name the offending field and never contain a secret.
func New(cfg Config, now func() time.Time) (*Verifier, error) {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{preset: cfg.Preset, now: now, newHash: sha256.New, enc: encHex}
	var errs []error // the problems of the scheme's fields, every one
	switch cfg.Preset {
	case "":
		return nil, fmt.Errorf("webhook: preset is required (one of %s)", strings.Join(presetNames, ", "))
	case PresetStandard, PresetSvix:
		name := "webhook"
		if cfg.Preset == PresetSvix {
			name = "svix"
		}
		v.kind = kindStandard
		v.enc = encBase64
		v.sigHeader, v.tsHeader, v.idHeader = name+"-signature", name+"-timestamp", name+"-id"
		v.signed = []segment{{kind: segID}, {lit: "."}, {kind: segTimestamp}, {lit: "."}, {kind: segBody}}
		v.bodyType = "type"
	case PresetGitHub:
		v.sigHeader, v.prefix = "X-Hub-Signature-256", "sha256="
		v.idHeader, v.typeHeader = "X-GitHub-Delivery", "X-GitHub-Event"
		v.signed = []segment{{kind: segBody}}
	case PresetStripe:
		v.kind = kindStripe
		v.sigHeader = "Stripe-Signature"
		v.signed = []segment{{kind: segTimestamp}, {lit: "."}, {kind: segBody}}
		v.bodyID, v.bodyType = "id", "type"
	case PresetActuallyCare:
		v.sigHeader = "X-Webhook-Signature"
		v.signed = []segment{{kind: segBody}}
		v.bodyType = "event"
	case PresetHMAC:
		if err := v.configureHMAC(cfg); err != nil {
			errs = append(errs, err)
		}
	default:
		return nil, fmt.Errorf("webhook: unknown preset %q (one of %s)", cfg.Preset, strings.Join(presetNames, ", "))
	}
	if cfg.Preset != PresetHMAC {
		if f := hmacOnlyField(cfg); f != "" {
			errs = append(errs, fieldErr(f, "%s is only for preset %s; preset %s fixes it", f, PresetHMAC, cfg.Preset))
		}
	}
	for _, s := range v.signed {
		v.usesTS = v.usesTS || s.kind == segTimestamp
		v.usesID = v.usesID || s.kind == segID
	}

	switch {
	case cfg.Tolerance < 0:
		errs = append(errs, fieldErr("tolerance", "tolerance %v is negative", cfg.Tolerance))
	case !v.usesTS && cfg.Tolerance != 0 && v.signed != nil: // nil: signed did not compile
		errs = append(errs, fieldErr("tolerance", "tolerance is set but preset %s signs no timestamp", cfg.Preset))
	case v.usesTS && cfg.Tolerance == 0:
		v.tolerance = DefaultTolerance
	default:
		v.tolerance = cfg.Tolerance
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("webhook: at least one secret is required")
	}
	if len(cfg.Secrets) > MaxSecrets {
		return nil, fmt.Errorf("webhook: %d secrets given, at most %d are allowed", len(cfg.Secrets), MaxSecrets)
	}
	for i, s := range cfg.Secrets {
		key, err := v.decodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("webhook: secret %d: %w", i+1, err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// hmacOnlyField names the first PresetHMAC-only field set in cfg.
func hmacOnlyField(cfg Config) string {
	for _, f := range []struct{ name, val string }{
		{"header", cfg.Header}, {"prefix", cfg.Prefix}, {"algorithm", cfg.Algorithm},
		{"encoding", cfg.Encoding}, {"signed", cfg.Signed},
		{"timestamp_header", cfg.TimestampHeader}, {"id_header", cfg.IDHeader},
	} {
		if f.val != "" {
			return f.name
		}
	}
	return ""
}

// FieldError is one problem of a Config: Field names the offending
// field (its YAML name, e.g. "algorithm"; "" for the whole config). New
// returns every problem it finds, joined (errors.Join); errors.As finds
// the first.
type FieldError struct {
	Field string
	Msg   string // without the "webhook: " prefix
	Err   error  // the cause, if any
}

func (e *FieldError) Error() string { return "webhook: " + e.Msg }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// configureHMAC fills v from the generic fields of cfg, and reports every
// problem of them.
func (v *Verifier) configureHMAC(cfg Config) error {
	var errs []error
	if cfg.Header == "" {
		errs = append(errs, fieldErr("header", "preset %s needs header, the name of the signature header", PresetHMAC))
	}
	names := map[string]string{}
	for _, f := range []struct{ name, val string }{
		{"header", cfg.Header}, {"timestamp_header", cfg.TimestampHeader}, {"id_header", cfg.IDHeader},
	} {
		if f.val == "" {
			continue
		}
		if !validHeaderName(f.val) {
			errs = append(errs, fieldErr(f.name, "%s %q is not a valid header name", f.name, f.val))
			continue
		}
		c := http.CanonicalHeaderKey(f.val)
		if other, dup := names[c]; dup {
			errs = append(errs, fieldErr(f.name, "%s and %s name the same header %q", other, f.name, f.val))
		}
		names[c] = f.name
	}
	if !validHeaderValue(cfg.Prefix) {
		errs = append(errs, fieldErr("prefix", "prefix contains a control character"))
	}
	switch strings.ToLower(cfg.Algorithm) {
	case "sha256", "":
		v.newHash = sha256.New
	case "sha1":
		v.newHash = sha1.New
	case "sha512":
		v.newHash = sha512.New
	default:
		errs = append(errs, fieldErr("algorithm", "algorithm %q is not sha1, sha256 or sha512", cfg.Algorithm))
	}
	switch strings.ToLower(cfg.Encoding) {
	case "hex", "":
		v.enc = encHex
	case "base64":
		v.enc = encBase64
	case "base64url":
		v.enc = encBase64URL
	default:
		errs = append(errs, fieldErr("encoding", "encoding %q is not hex, base64 or base64url", cfg.Encoding))
	}
	signed := cfg.Signed
	if signed == "" {
		signed = "{body}"
	}
	segs, err := compileSigned(signed)
	if err != nil {
		return errors.Join(append(errs, &FieldError{Field: "signed", Msg: fmt.Sprintf("signed %q: %v", cfg.Signed, err), Err: err})...)
	}
	hasTS, hasID := false, false
	for _, s := range segs {
		hasTS = hasTS || s.kind == segTimestamp
		hasID = hasID || s.kind == segID
	}
	switch {
	case hasTS && cfg.TimestampHeader == "":
		errs = append(errs, fieldErr("signed", "signed uses {timestamp} but timestamp_header is not set"))
	case !hasTS && cfg.TimestampHeader != "":
		errs = append(errs, fieldErr("timestamp_header", "timestamp_header is set but signed does not use {timestamp}; an unsigned timestamp cannot stop replays"))
	}
	if hasID && cfg.IDHeader == "" {
		errs = append(errs, fieldErr("signed", "signed uses {id} but id_header is not set"))
	}
	v.sigHeader, v.prefix = cfg.Header, cfg.Prefix
	v.tsHeader, v.idHeader = cfg.TimestampHeader, cfg.IDHeader
	v.signed = segs
	return errors.Join(errs...)
}

// decodeSecret turns a configured secret into the HMAC key.
func (v *Verifier) decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("is empty")
	}
	if strings.TrimSpace(s) != s {
		return nil, errors.New("starts or ends with white space (a newline read from a file?)")
	}
	if v.kind != kindStandard {
		return []byte(s), nil
	}
	b64 := strings.TrimPrefix(s, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("is not base64 after the optional whsec_ prefix")
	}
	if len(key) == 0 {
		return nil, errors.New("is empty after the whsec_ prefix")
	}
	return key, nil
}

// Preset returns the verifier's preset name.
func (v *Verifier) Preset() string { return v.preset }

// Tolerance returns the timestamp tolerance in force, or 0 when the scheme
// signs no timestamp.
func (v *Verifier) Tolerance() time.Duration { return v.tolerance }

// Verify checks a delivery: h are its request headers and body its raw body,
// exactly as received (never a re-encoded copy). It returns what the
// delivery says about itself once its signature has been verified against
// one of the secrets and its signed timestamp, if any, lies within the
// tolerance. The signature is checked before the timestamp, so [ErrStale]
// always means a genuine delivery that is too old (a replay or a late
// retry) or too early (a skewed clock). Every error is an [*Error] wrapping
// [ErrMissingSignature], [ErrBadSignature] or [ErrStale]; all of them mean
// HTTP 401.
func (v *Verifier) Verify(h http.Header, body []byte) (Event, error) {
	cands, tsRaw, err := v.signatures(h)
	if err != nil {
		return Event{}, err
	}
	tsRaw, idRaw, err := v.signedHeaders(h, tsRaw)
	if err != nil {
		return Event{}, err
	}
	var ts time.Time
	if v.usesTS {
		sec, ok := parseUnix(tsRaw)
		if !ok {
			return Event{}, fail(ErrBadSignature, "the timestamp is not a unix time in seconds")
		}
		ts = time.Unix(sec, 0)
	}
	match := v.match(cands, body, tsRaw, idRaw)
	if match < 0 {
		return Event{}, fail(ErrBadSignature, "no signature matches any secret")
	}
	if err := v.fresh(ts); err != nil {
		return Event{}, err
	}
	return v.event(h, body, ts, tsRaw, idRaw, match), nil
}

// signatures reads the candidate signatures of a delivery from its
// signature header, in the way of the verifier's scheme. For Stripe it also
// returns the t= timestamp, which travels in the same header.
func (v *Verifier) signatures(h http.Header) (cands [][]byte, tsRaw string, err error) {
	switch v.kind {
	case kindStandard:
		cands, err = v.standardSignatures(h)
		return cands, "", err
	case kindStripe:
		return v.stripeSignatures(h)
	default:
		cands, err = v.singleSignature(h)
		return cands, "", err
	}
}

// singleSignature reads the one signature of a kindSingle scheme: the
// signature header's value after the prefix, decoded.
func (v *Verifier) singleSignature(h http.Header) ([][]byte, error) {
	raw := h.Get(v.sigHeader)
	if raw == "" {
		return nil, fail(ErrMissingSignature, "no "+v.sigHeader+" header")
	}
	enc, ok := strings.CutPrefix(raw, v.prefix)
	if !ok {
		return nil, fail(ErrBadSignature, v.sigHeader+" does not start with "+strconv.Quote(v.prefix))
	}
	sig, ok := v.enc.decode(enc)
	if !ok {
		return nil, fail(ErrBadSignature, v.sigHeader+" is not "+v.enc.String())
	}
	return [][]byte{sig}, nil
}

// standardSignatures reads the "v1,<base64>" entries of a Standard Webhooks
// signature header, across every copy of the header. Entries of other
// versions and unreadable base64 are ignored.
func (v *Verifier) standardSignatures(h http.Header) ([][]byte, error) {
	var cands [][]byte
	present := false
	for _, val := range h.Values(v.sigHeader) {
		for _, f := range strings.Fields(val) {
			present = true
			b64, ok := strings.CutPrefix(f, "v1,")
			if !ok {
				continue
			}
			if len(cands) == MaxSignatures {
				return nil, v.tooManySignatures()
			}
			if sig, ok := encBase64.decode(b64); ok {
				cands = append(cands, sig)
			}
		}
	}
	if !present {
		return nil, fail(ErrMissingSignature, "no "+v.sigHeader+" header")
	}
	if len(cands) == 0 {
		return nil, fail(ErrBadSignature, v.sigHeader+" has no v1 signature in base64")
	}
	return cands, nil
}

// stripeSignatures reads a Stripe-Signature header: exactly one non-empty
// t= and at least one readable hex v1= entry. Unreadable v1 entries and
// other keys are ignored, as Stripe's libraries do.
func (v *Verifier) stripeSignatures(h http.Header) (cands [][]byte, tsRaw string, err error) {
	raw := h.Get(v.sigHeader)
	if raw == "" {
		return nil, "", fail(ErrMissingSignature, "no "+v.sigHeader+" header")
	}
	for _, pair := range strings.Split(raw, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
		switch k {
		case "t":
			if tsRaw != "" {
				return nil, "", fail(ErrBadSignature, v.sigHeader+" has more than one t=")
			}
			if val == "" {
				return nil, "", fail(ErrBadSignature, v.sigHeader+" has an empty t=")
			}
			tsRaw = val
		case "v1":
			if len(cands) == MaxSignatures {
				return nil, "", v.tooManySignatures()
			}
			if sig, ok := encHex.decode(val); ok {
				cands = append(cands, sig)
			}
		}
	}
	if tsRaw == "" {
		return nil, "", fail(ErrBadSignature, v.sigHeader+" has no t= timestamp")
	}
	if len(cands) == 0 {
		return nil, "", fail(ErrBadSignature, v.sigHeader+" has no v1 signature in hex")
	}
	return cands, tsRaw, nil
}

// tooManySignatures is the error for a header with over MaxSignatures entries.
func (v *Verifier) tooManySignatures() error {
	return fail(ErrBadSignature, v.sigHeader+" has more than "+strconv.Itoa(MaxSignatures)+" signatures")
}

// signedHeaders reads the timestamp header (unless the scheme carries the
// timestamp in the signature header, as Stripe does: tsRaw is then the t=
// already read) and the id header, requiring each that the scheme signs.
func (v *Verifier) signedHeaders(h http.Header, tsRaw string) (ts, id string, err error) {
	if v.usesTS && v.kind != kindStripe {
		if tsRaw = h.Get(v.tsHeader); tsRaw == "" {
			return "", "", fail(ErrMissingSignature, "no "+v.tsHeader+" header")
		}
	}
	if v.idHeader != "" {
		id = h.Get(v.idHeader)
		if v.usesID && id == "" {
			return "", "", fail(ErrMissingSignature, "no "+v.idHeader+" header")
		}
	}
	return tsRaw, id, nil
}

// match returns the index of the first secret whose HMAC of the signed
// content equals one of cands, or -1. Every candidate is compared for a
// key, in constant time.
func (v *Verifier) match(cands [][]byte, body []byte, tsRaw, idRaw string) int {
	for i, key := range v.keys {
		mac := hmac.New(v.newHash, key)
		v.writeSigned(mac, body, tsRaw, idRaw)
		sum := mac.Sum(nil)
		found := false
		for _, c := range cands {
			found = hmac.Equal(sum, c) || found
		}
		if found {
			return i
		}
	}
	return -1
}

// fresh checks a signed timestamp against the tolerance; schemes that sign
// no timestamp always pass.
func (v *Verifier) fresh(ts time.Time) error {
	if !v.usesTS {
		return nil
	}
	switch d := v.now().Sub(ts); {
	case d > v.tolerance:
		return fail(ErrStale, "the timestamp is older than the "+v.tolerance.String()+" tolerance")
	case d < -v.tolerance:
		return fail(ErrStale, "the timestamp is more than "+v.tolerance.String()+" in the future")
	}
	return nil
}

// event describes a verified delivery: its signed id and timestamp, the
// type from the type header, and the id and type from the (signed) body
// where the headers give none.
func (v *Verifier) event(h http.Header, body []byte, ts time.Time, tsRaw, idRaw string, match int) Event {
	ev := Event{Preset: v.preset, ID: idRaw, IDSigned: v.usesID && idRaw != "", Timestamp: ts, Secret: match,
		Digest: v.digest(body, tsRaw, idRaw)}
	if v.typeHeader != "" {
		ev.Type = h.Get(v.typeHeader)
	}
	if v.bodyID != "" || v.bodyType != "" {
		id, typ := bodyFields(body, v.bodyID, v.bodyType)
		if ev.ID == "" {
			ev.ID, ev.IDSigned = id, id != "" // the body is signed
		}
		if ev.Type == "" {
			ev.Type = typ
		}
	}
	return ev
}

// Sign returns the headers a sender would attach to body: the signature
// header(s) and, where the scheme has them, the timestamp and id headers.
// id is required when the scheme signs one (standard-webhooks, svix, hmac
// with {id}) and otherwise only sent when the scheme has an id header. A
// zero ts means now. Schemes that carry several signatures are signed with
// every secret, the others with the first. Sign is for tests and for the
// sending side of a hook (e.g. a "plumb webhook sign" command).
func (v *Verifier) Sign(body []byte, id string, ts time.Time) (http.Header, error) {
	if v.usesID && id == "" {
		return nil, fmt.Errorf("webhook: preset %s signs an event id; give one", v.preset)
	}
	if !validHeaderValue(id) {
		return nil, errors.New("webhook: the event id contains a control character")
	}
	if strings.Trim(id, " \t") != id {
		return nil, errors.New("webhook: the event id starts or ends with white space, which HTTP drops in transit")
	}
	if ts.IsZero() {
		ts = v.now()
	}
	if v.usesTS && ts.Unix() < 0 {
		return nil, errors.New("webhook: the timestamp is before 1970")
	}
	tsRaw := strconv.FormatInt(ts.Unix(), 10)
	keys := v.keys
	if v.kind == kindSingle {
		keys = keys[:1]
	}
	sigs := make([]string, len(keys))
	for i, key := range keys {
		mac := hmac.New(v.newHash, key)
		v.writeSigned(mac, body, tsRaw, id)
		sigs[i] = v.enc.encode(mac.Sum(nil))
	}

	h := http.Header{}
	switch v.kind {
	case kindSingle:
		h.Set(v.sigHeader, v.prefix+sigs[0])
	case kindStandard:
		for i := range sigs {
			sigs[i] = "v1," + sigs[i]
		}
		h.Set(v.sigHeader, strings.Join(sigs, " "))
	case kindStripe:
		h.Set(v.sigHeader, "t="+tsRaw+",v1="+strings.Join(sigs, ",v1="))
	}
	if v.usesTS && v.tsHeader != "" {
		h.Set(v.tsHeader, tsRaw)
	}
	if v.idHeader != "" && id != "" {
		h.Set(v.idHeader, id)
	}
	return h, nil
}

// writeSigned writes the signed content to mac, piece by piece, so the body
// is never copied.
func (v *Verifier) writeSigned(mac hash.Hash, body []byte, ts, id string) {
	for _, s := range v.signed {
		switch s.kind {
		case segLit:
			mac.Write([]byte(s.lit))
		case segBody:
			mac.Write(body)
		case segTimestamp:
			mac.Write([]byte(ts))
		case segID:
			mac.Write([]byte(id))
		}
	}
}

// digest is the hex SHA-256 of the signed content ([Event.Digest]).
func (v *Verifier) digest(body []byte, ts, id string) string {
	h := sha256.New()
	v.writeSigned(h, body, ts, id)
	return hex.EncodeToString(h.Sum(nil))
}

// parseUnix parses a unix time in seconds: 1 to 18 ASCII digits, nothing else.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// bodyFields reads two top-level string fields of a JSON object body, best
// effort: a body that is not a JSON object, or fields that are not strings,
// give "".
func bodyFields(body []byte, idField, typeField string) (id, typ string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", ""
	}
	str := func(name string) string {
		var s string
		if name == "" || json.Unmarshal(m[name], &s) != nil {
			return ""
		}
		return s
	}
	return str(idField), str(typeField)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
