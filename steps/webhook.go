package steps

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// Webhook makes an integration receive calls as well as make them: plumb
// serve answers signed deliveries at Path, verifies them over the raw
// body, drops duplicates, stores each event durably in its queue and
// answers at once; the event (the JSON body) then runs through the
// integration's steps as the lead.
type Webhook struct {
	// Path is the route the partner posts to (default
	// /v1/hooks/<integration name>).
	Path String `yaml:"path"`
	// Verify says how deliveries are signed.
	Verify *WebhookVerify `yaml:"verify,required"`
	// Dedupe says what makes two deliveries the same event.
	Dedupe *WebhookDedupe `yaml:"dedupe"`
	// MaxBytes bounds a delivery's body (default 512 KiB, at most
	// MaxWebhookBytes); more is a 413.
	MaxBytes int64 `yaml:"max_bytes"`
	// Meta, when set, names a lead field that receives what the delivery
	// says about itself: {id, type, preset, received}.
	Meta string `yaml:"meta"`
	Pos  Pos    `yaml:"-"`
}

// WebhookVerify is the signature scheme of a webhook: a preset and its
// secrets, plus the generic HMAC's fields (preset hmac only).
type WebhookVerify struct {
	// Preset is the signature scheme (see [WebhookPresets]).
	Preset String `yaml:"preset,required"`
	// Secrets are the active secrets, newest first (rotation): each is a
	// reference to a secret setting, "{{settings.NAME}}" (a list setting
	// gives several).
	Secrets []String `yaml:"secrets,required"`
	// Tolerance is how far a signed timestamp may be from now (default
	// 5m); only for schemes that sign one.
	Tolerance time.Duration `yaml:"tolerance"`
	// Header is the signature header (preset hmac only, as are the
	// fields below).
	Header string `yaml:"header"`
	// Prefix is the text before the signature, e.g. sha256=.
	Prefix string `yaml:"prefix"`
	// Algorithm is the HMAC hash (see [WebhookAlgorithms]).
	Algorithm string `yaml:"algorithm"`
	// Encoding is how the signature is written (see [WebhookEncodings]).
	Encoding string `yaml:"encoding"`
	// Signed is the signed content with {body}, {timestamp} and {id},
	// e.g. {timestamp}.{body} (default {body}).
	Signed string `yaml:"signed"`
	// TimestampHeader is the header carrying the signed unix timestamp
	// (needs {timestamp} in Signed).
	TimestampHeader string `yaml:"timestamp_header"`
	// IDHeader is the header carrying the event id (signed when Signed
	// uses {id}).
	IDHeader string `yaml:"id_header"`
	Pos      Pos    `yaml:"-"`
	// KeyPos holds the position of each key's value, for errors.
	KeyPos map[string]Pos `yaml:"-"`
}

// WebhookDedupe says which deliveries are the same event.
type WebhookDedupe struct {
	// Key is a template over the event (lead) and settings, e.g.
	// "{{lead.event}}:{{lead.timestamp}}". Default: the preset's event id
	// (webhook-id, X-GitHub-Delivery, the Stripe event id, id_header), or
	// for actuallycare the body's event and timestamp.
	Key String `yaml:"key"`
	// Window is how long a key is remembered (default 24h).
	Window time.Duration `yaml:"window"`
	Pos    Pos           `yaml:"-"`
}

// Webhook defaults and bounds. The defaults are package webhook's
// (DefaultMaxBytes, DefaultWindow); the engine's tests check they agree.
const (
	DefaultWebhookMaxBytes = 512 << 10
	DefaultWebhookWindow   = 24 * time.Hour
	// MaxWebhookBytes bounds max_bytes: an accepted event is stored as one
	// queue message, and JetStream takes at most 1 MiB per message.
	MaxWebhookBytes = 960 << 10
)

var (
	settingRefRE = regexp.MustCompile(`^\{\{\s*\.?settings\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$`)
	hookPathRE   = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
	// reservedPaths are the service's own routes, which a hook may not take.
	reservedPaths = []string{"/v1/integrations", "/v1/leads", "/v1/batches", "/v1/callbacks", "/v1/dead", "/v1/queue", "/v1/oauth", "/v1/stats", "/v1/hooks/deliveries", "/healthz", "/readyz", "/metrics", "/console"}
)

// ReservedPath reports whether path is one of plumb serve's own routes (or
// under one), which no webhook may take.
func ReservedPath(path string) bool {
	return slices.ContainsFunc(reservedPaths, func(r string) bool { return path == r || strings.HasPrefix(path, r+"/") })
}

// HookPath is the route of the webhook: its path, or /v1/hooks/<name>.
func (in *Integration) HookPath() string {
	if in.Webhook == nil {
		return ""
	}
	if in.Webhook.Path.Value != "" {
		return in.Webhook.Path.Value
	}
	return "/v1/hooks/" + in.Name.Value
}

// SecretSettings returns the names of the settings webhook.verify.secrets
// refer to, in order.
func (w *WebhookVerify) SecretSettings() []string {
	var out []string
	for _, s := range w.Secrets {
		if m := settingRefRE.FindStringSubmatch(s.Value); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// validate checks the webhook: section (nil: none).
func (w *Webhook) validate(in *Integration, errs *ErrorList) {
	if w == nil {
		return
	}
	if p := w.Path; p.IsSet() {
		switch {
		case !hookPathRE.MatchString(p.Value):
			errs.Add(p.Pos, "an absolute path of letters, digits and . _ ~ -, such as /webhooks/actuallycare", "webhook: path %q is not a plain path", p.Value)
		case ReservedPath(p.Value):
			errs.Add(p.Pos, "the default /v1/hooks/"+in.Name.Value+" is always free", "webhook: path %q is a route of plumb serve", p.Value)
		}
	}
	if w.MaxBytes < 0 || w.MaxBytes > MaxWebhookBytes {
		errs.Add(w.Pos, "an event is stored as one queue message, at most 1 MiB", "webhook: max_bytes must be between 0 (default %d) and %d", DefaultWebhookMaxBytes, MaxWebhookBytes)
	}
	if w.Meta != "" && !identRE.MatchString(w.Meta) {
		errs.Add(w.Pos, "a lead field name such as webhook", "webhook: meta %q is not a field name", w.Meta)
	}
	if v := w.Verify; v != nil {
		v.validate(in, errs)
	}
	// the dedupe key's template and the scheme's own rules are checked
	// when the engine compiles the file
}

func (v *WebhookVerify) validate(in *Integration, errs *ErrorList) {
	preset := WebhookPreset(v.Preset.Value)
	if !WebhookPresets.Has(preset) {
		if v.Preset.IsSet() { // absent, it is reported as a missing key
			errs.Add(v.Preset.Pos, WebhookPresets.Hint(), "webhook: verify: unknown preset %q", preset)
		}
		return
	}
	if len(v.Secrets) == 0 {
		errs.Add(v.Pos, "e.g. secrets: [\"{{settings.hook_secret}}\"] with hook_secret: { secret: true, env: HOOK_SECRET }", "webhook: verify: secrets is empty")
	}
	for _, s := range v.Secrets {
		m := settingRefRE.FindStringSubmatch(s.Value)
		if m == nil {
			errs.Add(s.Pos, "secrets never live in the file: write \"{{settings.NAME}}\" and declare NAME with secret: true", "webhook: verify: a secret must be a setting reference")
			continue
		}
		def, ok := in.Settings.Get(m[1])
		switch {
		case !ok || def == nil:
			errs.Add(s.Pos, "declare it under settings: with secret: true", "webhook: verify: setting %q is not declared", m[1])
		case !def.Secret:
			errs.Add(s.Pos, "add secret: true to the setting, so it is masked everywhere", "webhook: verify: setting %q holds a signing secret but is not secret", m[1])
		case def.Type != "" && def.Type != SettingString && def.Type != SettingList:
			errs.Add(s.Pos, "", "webhook: verify: setting %q must be a string or a list, not %s", m[1], def.Type)
		}
	}
}
