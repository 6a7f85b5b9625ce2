package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/webhook"
)

const hookBase = `version: 1
name: acare
settings:
  hook_secret: { secret: true }
  old_secret:  { secret: true }
  plain:       {}
  base_url:    { default: "https://crm.example" }
webhook:
%s
steps:
  - name: update
    when: lead.event == "lead.status_changed"
    request: { method: PUT, url: "{{settings.base_url}}/contacts", body: { json: { id: "{{lead.data.id}}" } } }
`

func hookPlan(t *testing.T, section string) *Plan {
	t.Helper()
	p, err := Parse("a.yaml", []byte(strings.Replace(hookBase, "%s", section, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHookConfig: the receiver's configuration is the webhook: section
// with its secrets read from the runner's settings.
func TestHookConfig(t *testing.T) {
	p := hookPlan(t, `  path: /webhooks/actuallycare
  verify: { preset: actuallycare, secrets: ["{{settings.hook_secret}}", "{{ settings.old_secret }}"] }
  dedupe: { key: "{{lead.event}}:{{lead.timestamp}}", window: 48h }
  max_bytes: 65536
  meta: webhook`)
	r, err := p.Bind(Config{Values: map[string]any{"hook_secret": "new", "old_secret": "old", "base_url": "u"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	cfg, err := r.HookConfig()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Verify.Secrets, ",") != "new,old" || cfg.Window.Hours() != 48 || cfg.MaxBytes != 65536 || cfg.Meta != "webhook" ||
		cfg.DedupeKey != "{{lead.event}}:{{lead.timestamp}}" || cfg.Integration != "acare" || cfg.Verify.Preset != "actuallycare" {
		t.Errorf("config %+v", cfg)
	}
	if h, err := r.Hook(); err != nil || h == nil {
		t.Errorf("hook %v, %v", h, err)
	}

	unset, err := p.Bind(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer unset.Close(context.Background())
	if _, err := unset.HookConfig(); err == nil || !strings.Contains(err.Error(), "hook_secret") {
		t.Errorf("unset secret: %v", err)
	}
	if _, err := unset.Hook(); err == nil || !strings.Contains(err.Error(), "no signing secret has a value") {
		t.Errorf("unset secret, hook: %v", err)
	}
}

// TestWebhookCompileErrors: the scheme's own rules and the dedupe key's
// template are checked when the file is compiled, at their position.
func TestWebhookCompileErrors(t *testing.T) {
	for _, tc := range []struct{ section, want string }{
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"], tolerance: 1m }`, "a.yaml:9:79: webhook: verify: tolerance is set but preset github signs no timestamp"},
		{`  verify: { preset: hmac, secrets: ["{{settings.hook_secret}}"] }`, "webhook: verify: preset hmac needs header"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"], header: X-Sig }`, "webhook: verify: header is only for preset hmac"},
		{`  verify: { preset: hmac, header: X-Sig, algorithm: bogus, secrets: ["{{settings.hook_secret}}"] }`, `webhook: verify: algorithm "bogus" is not sha1, sha256 or sha512`},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  dedupe: { key: "{{steps.x.y}}" }`, "a.yaml:10:18: webhook: dedupe: key reads steps.x.y (the key reads the event as lead.* (and settings.*))"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  dedupe: { key: "{{settings.nope}}" }`, "webhook: dedupe: key reads settings.nope, which is not declared"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  dedupe: { key: "{{lead.x" }`, "a.yaml:10:18: webhook: dedupe: key:"},
	} {
		_, err := Parse("a.yaml", []byte(strings.Replace(hookBase, "%s", tc.section, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.section, err, tc.want)
		}
	}
	// an unknown preset is the model's problem, reported once
	_, err := Parse("a.yaml", []byte(strings.Replace(hookBase, "%s", `  verify: { preset: slack, secrets: ["{{settings.hook_secret}}"] }`, 1)))
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), `unknown preset "slack"`) {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestWebhookDefaultsAgree: the model documents package webhook's
// defaults.
func TestWebhookDefaultsAgree(t *testing.T) {
	if steps.DefaultWebhookMaxBytes != webhook.DefaultMaxBytes || steps.DefaultWebhookWindow != webhook.DefaultWindow {
		t.Errorf("steps says max_bytes %d, window %v; webhook says %d, %v", steps.DefaultWebhookMaxBytes, steps.DefaultWebhookWindow,
			webhook.DefaultMaxBytes, webhook.DefaultWindow)
	}
}

// TestFragmentValuePositions: a template error inside a structured value
// of an included fragment (vars) points into the fragment, not the file
// that includes it.
func TestFragmentValuePositions(t *testing.T) {
	dir := t.TempDir()
	frag := filepath.Join(dir, "common.yaml")
	if err := os.WriteFile(frag, []byte("vars:\n  who:\n    name: \"{{lead.name\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.yaml")
	src := "version: 1\nname: frag\ninclude: [common.yaml]\nsteps:\n  - name: a\n    request: { url: \"https://x.example/\" }\n"
	if err := os.WriteFile(main, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(main)
	if err == nil || !strings.HasPrefix(err.Error(), frag+":3:11: bad template") {
		t.Errorf("got %v, want an error at %s:3:11", err, frag)
	}
}
