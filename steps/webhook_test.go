package steps

import (
	"strings"
	"testing"
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

func TestWebhookSection(t *testing.T) {
	in, err := parse("a.yaml", []byte(strings.Replace(hookBase, "%s", `  path: /webhooks/actuallycare
  verify: { preset: actuallycare, secrets: ["{{settings.hook_secret}}", "{{ settings.old_secret }}"] }
  dedupe: { key: "{{lead.event}}:{{lead.timestamp}}", window: 48h }
  max_bytes: 65536
  meta: webhook`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.HookPath(); got != "/webhooks/actuallycare" {
		t.Errorf("path %q", got)
	}
	if got := in.Webhook.Verify.SecretSettings(); strings.Join(got, ",") != "hook_secret,old_secret" {
		t.Errorf("secret settings %v", got)
	}

	in, err = parse("a.yaml", []byte(strings.Replace(hookBase, "%s", `  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.HookPath(); got != "/v1/hooks/acare" {
		t.Errorf("default path %q", got)
	}
}

// TestWebhookErrors: the model's own checks (the scheme's rules and the
// dedupe key's template are the engine's: engine.TestWebhookCompileErrors).
func TestWebhookErrors(t *testing.T) {
	for _, tc := range []struct{ section, want string }{
		{`  verify: { preset: slack, secrets: ["{{settings.hook_secret}}"] }`, `a.yaml:9:21: webhook: verify: unknown preset "slack"`},
		{`  verify: { preset: github, secrets: ["s3cr3t"] }`, "a secret must be a setting reference"},
		{`  verify: { preset: github, secrets: ["{{settings.nope}}"] }`, `setting "nope" is not declared`},
		{`  verify: { preset: github, secrets: ["{{settings.plain}}"] }`, `setting "plain" holds a signing secret but is not secret`},
		{`  verify: { preset: github, secrets: [] }`, "secrets is empty"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  path: /v1/dead/x`, "is a route of plumb serve"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  path: "no-slash"`, "is not a plain path"},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  dedupe: { ttl: 1h }`, `unknown key "ttl"`},
		{`  path: /x`, `missing required key "verify"`},
		{`  verify: { preset: github, secrets: ["{{settings.hook_secret}}"] }
  max_bytes: 2000000`, "max_bytes must be between 0"},
	} {
		_, err := parse("a.yaml", []byte(strings.Replace(hookBase, "%s", tc.section, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.section, err, tc.want)
		}
	}
}
