package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/plumbhq/plumb/cmd/plumb/internal/schema"
)

const newDoc = `
Scaffold an integration in DIR/NAME (DIR defaults to the current directory):

  integration.yaml       settings schema (base_url, a secret api_key) and one
                         JSON POST step with captures, outcome and append
  integration.test.yaml  stored test cases: accepted, rejected, retried 503
  lead.json              a sample lead
  settings.yaml          placeholder setting values for plumb try / run

The files pass plumb validate and plumb test as generated; edit them from
there. integration.yaml starts with a yaml-language-server line pointing at
plumb's JSON Schema, so editors complete and check keys.

--webhook adds a commented-out webhook: section as a reminder of what the
partner calls back; plumb does not receive webhooks yet.`

var scaffoldName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func newCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "new", "[--dir DIR] [--webhook] NAME", newDoc)
	dir := fs.String("dir", ".", "create the integration directory in `DIR`")
	webhook := fs.Bool("webhook", false, "add a commented-out webhook section stub")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	switch {
	case len(pos) != 1:
		s.errorf("new: give exactly one NAME, got %d", len(pos))
		fmt.Fprintln(s.stderr, "Run 'plumb new -h' for usage.")
		return ExitUsage
	case !scaffoldName.MatchString(pos[0]):
		s.errorf("new: name %q: use letters, digits, - and _, starting with a letter or digit", pos[0])
		return ExitUsage
	}
	name := pos[0]
	root := filepath.Join(*dir, name)
	if _, err := os.Stat(root); err == nil {
		s.errorf("new: %s already exists; choose another name or --dir", root)
		return ExitUsage
	} else if !errors.Is(err, os.ErrNotExist) {
		s.errorf("new: %v", err)
		return ExitUsage
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		s.errorf("new: %v", err)
		return ExitUsage
	}
	files := scaffold(name, *webhook)
	for _, f := range files {
		path := filepath.Join(root, f.name)
		if err := os.WriteFile(path, []byte(f.content), 0o644); err != nil {
			s.errorf("new: %v", err)
			return ExitUsage
		}
		fmt.Fprintf(s.stdout, "created %s\n", path)
	}
	integ := filepath.Join(root, "integration.yaml")
	fmt.Fprintf(s.stdout, "\nNext:\n  plumb validate %s\n  plumb test %s\n  plumb try --settings %s --lead %s --dry-run %s\n",
		integ, root, filepath.Join(root, "settings.yaml"), filepath.Join(root, "lead.json"), integ)
	return ExitOK
}

type scaffoldFile struct{ name, content string }

// scaffold returns the files of a new integration called name.
func scaffold(name string, webhook bool) []scaffoldFile {
	env := strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(name, "_"))
	r := strings.NewReplacer("NAME", name, "ENV", env, "SCHEMA", schema.ID(schema.Integration), "TESTSCHEMA", schema.ID(schema.TestFile))
	integ := r.Replace(integrationTemplate)
	if webhook {
		integ += r.Replace(webhookStub)
	}
	return []scaffoldFile{
		{"integration.yaml", integ},
		{"integration.test.yaml", r.Replace(testTemplate)},
		{"lead.json", leadTemplate},
		{"settings.yaml", r.Replace(settingsTemplate)},
	}
}

const integrationTemplate = `# yaml-language-server: $schema=SCHEMA
#
# NAME: send a lead to the partner's API and read its verdict.
# Check:  plumb validate integration.yaml
# Test:   plumb test .            (runs integration.test.yaml, no network)
# Try it: plumb try --settings settings.yaml --lead lead.json integration.yaml
version: 1
name: NAME
description: Submit a lead to the partner and record its answer
settings:
  base_url: { default: "https://api.partner.example" }
  api_key:  { required: true, secret: true, env: ENV_API_KEY }
steps:
  - name: submit
    when: lead.email != ""
    request:
      method: POST
      url: "{{settings.base_url}}/leads"
      headers: { X-API-Key: "{{settings.api_key}}" }
      body:
        json:
          email: "{{lead.email}}"
          phone: "{{ lead.phone | digits }}"
          first_name: "{{lead.first_name}}"
    timeout: 5s
    retry:
      - on: [429, 503]
        action: retry
        max_attempts: 3
        backoff: { initial: 1s, max: 10s }
    capture:
      accepted: { json: accepted, type: bool }
      id:       { json: id, default: "" }
      reason:   { json: reason, default: "" }
    outcome:
      failure_when: captured.accepted == false
      reason: "partner rejected the lead: {{captured.reason}}"
    append:
      partner.id: "{{captured.id}}"
      partner.accepted: "{{captured.accepted}}"
`

const webhookStub = `
# webhook:
#   Not supported yet: plumb cannot receive webhooks, so this section stays a
#   comment (plumb validate would reject it). It notes what the partner will
#   call back once plumb can listen for it.
#   path: /webhooks/NAME
#   verify: { type: hmac, header: X-Signature, secret: "{{settings.webhook_secret}}" }
#   match: { lead: "{{payload.lead_id}}" }
`

const testTemplate = `# yaml-language-server: $schema=TESTSCHEMA
#
# Stored test cases for integration.yaml: plumb test plays the recorded
# responses from a loopback server; nothing reaches the partner.
tests:
  - name: accepted lead succeeds
    lead_file: lead.json
    settings: { api_key: test-key }
    responses:
      submit:
        status: 200
        body: { accepted: true, id: P-1001 }
    expect:
      outcome: success
      captured: { submit: { accepted: true, id: P-1001 } }
      lead: { partner.id: P-1001, partner.accepted: true }
      requests:
        submit:
          - method: POST
            path: /leads
            headers: { X-API-Key: test-key }
            body: { email: jane.doe@mail.example, phone: "5125550142" }

  - name: rejected lead fails with the partner's reason
    lead: { email: dup@mail.example, phone: "512-555-0100", first_name: Dup }
    settings: { api_key: test-key }
    responses:
      submit: { body: { accepted: false, reason: duplicate } }
    expect:
      outcome: failure
      reason: "partner rejected the lead: duplicate"

  - name: a busy partner is retried
    lead_file: lead.json
    settings: { api_key: test-key }
    responses:
      submit:
        - { status: 503, headers: { Retry-After: "1" }, body: busy }
        - { status: 200, body: { accepted: true, id: P-1002 } }
    expect:
      outcome: success
      attempts: { submit: 2 }
`

const leadTemplate = `{"email": "jane.doe@mail.example", "phone": "(512) 555-0142", "first_name": "Jane"}
`

const settingsTemplate = `# Setting values for plumb try / plumb run --settings. Replace them with
# real ones, or leave the secret out and export ENV_API_KEY.
api_key: replace-me
`
