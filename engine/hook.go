package engine

import (
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
	"github.com/plumbhq/plumb/webhook"
)

// HookPath is the path plumb serve receives the integration's webhook on
// (its webhook: path:, or /v1/hooks/NAME); "" when it has no webhook:
// section.
func (p *Plan) HookPath() string { return p.model().HookPath() }

// Hook returns the receiver of the integration's webhook: section, its
// signing secrets read from the runner's settings; nil (and no error) when
// the integration has no webhook: section. The file is not read again: the
// section was decoded and checked with the rest of the plan.
func (r *Runner) Hook() (*webhook.Hook, error) {
	if r.plan == nil {
		return nil, ErrNotBound
	}
	if r.plan.in.Webhook == nil {
		return nil, nil
	}
	cfg, err := r.HookConfig()
	if err != nil {
		return nil, err
	}
	return webhook.NewHook(cfg, nil)
}

// HookConfig is the integration's webhook: section as a receiver's
// configuration, its signing secrets read from the runner's settings. It
// fails, naming the settings but never a value, when the integration has
// no webhook: section or none of its secrets has a value.
func (r *Runner) HookConfig() (webhook.HookConfig, error) {
	if r.plan == nil {
		return webhook.HookConfig{}, ErrNotBound
	}
	in := r.plan.in
	w := in.Webhook
	if w == nil || w.Verify == nil {
		return webhook.HookConfig{}, fmt.Errorf("integration %s has no webhook: section", in.Name.Value)
	}
	secrets, err := hookSecrets(w.Verify, r.Value)
	if err != nil {
		return webhook.HookConfig{}, err
	}
	settings := map[string]any{}
	for _, s := range in.Settings {
		if v, ok := r.Value(s.Key); ok {
			settings[s.Key] = v
		}
	}
	cfg := webhook.HookConfig{Integration: in.Name.Value, Verify: verifyConfig(w.Verify, secrets), MaxBytes: w.MaxBytes,
		Meta: w.Meta, Settings: settings}
	if d := w.Dedupe; d != nil {
		cfg.DedupeKey, cfg.Window = d.Key.Value, d.Window
	}
	return cfg, nil
}

// hookSecrets reads the signing secrets of a verify block (value returns a
// setting's value). Unset secrets are skipped (the old secret of a
// finished rotation); at least one must have a value.
func hookSecrets(v *steps.WebhookVerify, value func(name string) (any, bool)) ([]string, error) {
	var secrets []string
	for _, name := range v.SecretSettings() {
		switch x, _ := value(name); x := x.(type) {
		case string:
			if x != "" {
				secrets = append(secrets, x)
			}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok && s != "" {
					secrets = append(secrets, s)
				}
			}
		case nil:
		default:
			return nil, fmt.Errorf("webhook: setting %s (a signing secret) is not a string", name)
		}
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("webhook: no signing secret has a value (settings %s)", strings.Join(v.SecretSettings(), ", "))
	}
	return secrets, nil
}

// verifyConfig is the verify block as a webhook.Config with the given
// secrets.
func verifyConfig(v *steps.WebhookVerify, secrets []string) webhook.Config {
	return webhook.Config{Preset: v.Preset.Value, Secrets: secrets, Header: v.Header, Prefix: v.Prefix,
		Algorithm: v.Algorithm, Encoding: v.Encoding, Signed: v.Signed, TimestampHeader: v.TimestampHeader,
		IDHeader: v.IDHeader, Tolerance: v.Tolerance}
}

// checkHook checks what the file model cannot: the webhook's path once
// cleaned, its scheme's own rules and its dedupe key's template.
func (c *compiler) checkHook() {
	w := c.in.Webhook
	if w == nil {
		return
	}
	c.checkHookPath()
	if v := w.Verify; v != nil && steps.WebhookPresets.Has(steps.WebhookPreset(v.Preset.Value)) {
		c.checkVerify(v)
	}
	if d := w.Dedupe; d != nil && d.Key.IsSet() {
		c.checkDedupeKey(d.Key)
	}
}

// checkVerify checks the scheme's own rules (hmac fields, tolerance) with
// a stand-in secret.
func (c *compiler) checkVerify(v *steps.WebhookVerify) {
	placeholder := "placeholder-secret"
	if p := steps.WebhookPreset(v.Preset.Value); p == steps.PresetStandard || p == steps.PresetSvix {
		placeholder = "whsec_" + base64.StdEncoding.EncodeToString([]byte(placeholder))
	}
	_, err := webhook.New(verifyConfig(v, []string{placeholder}), nil)
	for _, err := range leaves(err) { // every problem of the scheme's fields
		pos := v.Pos
		var fe *webhook.FieldError
		if errors.As(err, &fe) {
			if p, ok := v.KeyPos[fe.Field]; ok {
				pos = p
			}
		}
		c.errs.Add(pos, "", "%s", strings.Replace(err.Error(), "webhook: ", "webhook: verify: ", 1))
	}
}

// leaves are the errors joined (errors.Join) in err, nested joins
// flattened; err itself when it joins none; none for nil.
func leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

// checkDedupeKey checks the dedupe key is a template over the event (lead)
// and declared settings.
func (c *compiler) checkDedupeKey(key steps.String) {
	t, err := template.New().Compile("webhook.dedupe.key", key.Value, template.Plain)
	if err != nil {
		c.errs.Add(key.Pos, "a template over the event, e.g. \"{{lead.event}}:{{lead.timestamp}}\"", "webhook: dedupe: key: %v", err)
		return
	}
	for _, ref := range t.Refs() {
		root, rest, _ := strings.Cut(ref, ".")
		switch root {
		case "lead":
		case "settings":
			if _, ok := c.in.Settings.Get(strings.SplitN(rest, ".", 2)[0]); !ok {
				c.errs.Add(key.Pos, "declare it under settings:", "webhook: dedupe: key reads %s, which is not declared", ref)
			}
		default:
			c.errs.Add(key.Pos, "the key reads the event as lead.* (and settings.*)", "webhook: dedupe: key reads %s", ref)
		}
	}
}

// checkHookPath refuses a webhook path that is not canonical: plumb serve
// routes requests by their canonical path (it refuses the others), so a
// path with . or .. segments would never be reached as written, and once
// cleaned it may be another route's (/v1/hooks/../integrations/x/run).
func (c *compiler) checkHookPath() {
	in := c.in
	if in.Webhook == nil {
		return
	}
	p := in.HookPath()
	clean := path.Clean("/" + p)
	if clean == p {
		return
	}
	if !in.Webhook.Path.IsSet() && in.Name.Value == "" {
		return // the missing name is reported by the validator
	}
	if in.Webhook.Path.IsSet() {
		hint := "write " + clean
		if steps.ReservedPath(clean) {
			hint = "that is a route of plumb serve; the default /v1/hooks/NAME is always free"
		}
		c.errs.Add(in.Webhook.Path.Pos, hint, "webhook: path %q is not canonical: it means %s", p, clean)
		return
	}
	c.errs.Add(in.Name.Pos, "give the webhook a path: of its own, or a name of letters, digits, _ and -",
		"webhook: the default path %s is not canonical: the name %q has / or . segments", p, in.Name.Value)
}
