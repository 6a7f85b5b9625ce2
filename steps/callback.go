package steps

import (
	"net/url"
	"strings"
)

// Callback makes plumb serve tell a URL what became of the leads it runs:
// each lead's result, or each batch's summary once all its leads are done,
// POSTed as JSON and signed the Standard Webhooks way (webhook-id,
// webhook-timestamp, webhook-signature), retried with backoff and
// dead-lettered after the queue's last delivery.
type Callback struct {
	// URL receives the callbacks: an http(s) URL, or a reference to a
	// setting holding one ("{{settings.NAME}}"). Optional when only
	// batches name their URL (POST /leads?callback_url=).
	URL String `yaml:"url"`
	// Secret signs the callbacks: a reference to a secret setting
	// ("{{settings.NAME}}") holding a Standard Webhooks key (whsec_ and
	// base64).
	Secret String `yaml:"secret,required"`
	// Events says what is sent (see [CallbackEvents]).
	Events String `yaml:"events"`
	// Origins are the origins (https://host[:port]) a batch's own
	// callback_url may name; other URLs are refused.
	Origins []String `yaml:"origins"`
	Pos     Pos      `yaml:"-"`
}

// SecretSetting is the name of the setting callback.secret refers to.
func (c *Callback) SecretSetting() string {
	if m := settingRefRE.FindStringSubmatch(c.Secret.Value); m != nil {
		return m[1]
	}
	return ""
}

// URLSetting is the name of the setting callback.url refers to ("" for a
// literal URL).
func (c *Callback) URLSetting() string {
	if m := settingRefRE.FindStringSubmatch(c.URL.Value); m != nil {
		return m[1]
	}
	return ""
}

// validate checks the callback: section (nil: none).
func (c *Callback) validate(in *Integration, errs *ErrorList) {
	if c == nil {
		return
	}
	if c.URL.IsSet() && c.URLSetting() == "" && !httpURL(c.URL.Value) {
		errs.Add(c.URL.Pos, "an absolute http(s) URL, or \"{{settings.NAME}}\"", "callback: url %q is not an http(s) URL", c.URL.Value)
	}
	if name := c.URLSetting(); name != "" {
		if def, ok := in.Settings.Get(name); !ok || def == nil {
			errs.Add(c.URL.Pos, "declare it under settings:", "callback: url: setting %q is not declared", name)
		}
	}
	name := c.SecretSetting()
	def, ok := in.Settings.Get(name)
	switch {
	case !c.Secret.IsSet():
		// the decoder reported the missing key, at the section
	case name == "":
		errs.Add(c.Secret.Pos, "secrets never live in the file: write \"{{settings.NAME}}\" and declare NAME with secret: true", "callback: secret must be a setting reference")
	case !ok || def == nil:
		errs.Add(c.Secret.Pos, "declare it under settings: with secret: true", "callback: secret: setting %q is not declared", name)
	case !def.Secret:
		errs.Add(c.Secret.Pos, "add secret: true to the setting, so it is masked everywhere", "callback: secret: setting %q holds a signing key but is not secret", name)
	}
	if e := CallbackEvent(c.Events.Value); !CallbackEvents.Valid(e) {
		errs.Add(c.Events.Pos, CallbackEvents.Hint(), "callback: unknown events %q", e)
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o.Value)
		if err != nil || !httpURL(o.Value) || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs.Add(o.Pos, "an origin such as https://hooks.example.com or https://hooks.example.com:8443", "callback: origin %q is not a scheme and host", o.Value)
		}
	}
}

// httpURL reports whether s is an absolute http or https URL with a host
// and no user info.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		!strings.ContainsAny(s, " \t\r\n")
}
