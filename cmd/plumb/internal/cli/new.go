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

--webhook scaffolds a webhook receiver instead: a webhook: section (Standard
Webhooks signatures, the secret from a secret setting, dedupe on the event
id) whose events run through a step forwarding lead.created events, served
by plumb serve at /v1/hooks/NAME; lead.json is a sample event, and the test
cases sign deliveries with a test secret: accepted, another event type
skipped, forged, unsigned and stale deliveries refused with 401.`

var scaffoldName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func newCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "new", "[--dir DIR] [--webhook] NAME", newDoc)
	dir := fs.String("dir", ".", "create the integration directory in `DIR`")
	webhook := fs.Bool("webhook", false, "scaffold a webhook receiver (plumb serve) with its test cases")
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
	if *webhook {
		fmt.Fprintf(s.stdout, "  plumb serve --dir %s --data DATA_DIR      (receives POST /v1/hooks/%s)\n  plumb webhook sign --preset standard-webhooks --secret-env %s_WEBHOOK_SECRET --id evt_1 \\\n      --curl http://127.0.0.1:8080/v1/hooks/%s %s\n",
			*dir, name, envName(name), name, filepath.Join(root, "lead.json"))
	}
	return ExitOK
}

type scaffoldFile struct{ name, content string }

// scaffold returns the files of a new integration called name.
func scaffold(name string, webhook bool) []scaffoldFile {
	r := strings.NewReplacer("NAME", name, "ENV", envName(name), "SCHEMA", schema.ID(schema.Integration), "TESTSCHEMA", schema.ID(schema.TestFile))
	if webhook {
		return []scaffoldFile{
			{"integration.yaml", r.Replace(webhookTemplate)},
			{"integration.test.yaml", r.Replace(webhookTestTemplate)},
			{"lead.json", webhookEventTemplate},
			{"settings.yaml", r.Replace(webhookSettingsTemplate)},
		}
	}
	return []scaffoldFile{
		{"integration.yaml", r.Replace(integrationTemplate)},
		{"integration.test.yaml", r.Replace(testTemplate)},
		{"lead.json", leadTemplate},
		{"settings.yaml", r.Replace(settingsTemplate)},
	}
}

// envName is the prefix of the scaffold's environment variables.
func envName(name string) string {
	return strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(name, "_"))
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

const webhookTemplate = `# yaml-language-server: $schema=SCHEMA
#
# NAME: receive the partner's webhooks and act on each event.
# plumb serve answers POST /v1/hooks/NAME: it verifies the signature over the
# raw body, drops a delivery it has already seen, stores the event durably
# and answers 200 at once; the event then runs through steps: as the lead.
# Check:  plumb validate integration.yaml
# Test:   plumb test .            (signs test deliveries, no network)
# Serve:  plumb serve --dir .. --data /var/lib/plumb
version: 1
name: NAME
description: Receive the partner's events and forward new leads
settings:
  base_url:    { default: "https://api.partner.example" }
  api_key:     { required: true, secret: true, env: ENV_API_KEY }
  hook_secret: { required: true, secret: true, env: ENV_WEBHOOK_SECRET, description: "the whsec_… signing secret the partner gave you" }
webhook:
  # path: /webhooks/NAME           # default /v1/hooks/NAME
  verify:
    preset: standard-webhooks      # or svix, github, stripe, actuallycare, hmac (header, algorithm, encoding, signed …)
    secrets: ["{{settings.hook_secret}}"]   # add the old secret's setting while rotating
    tolerance: 5m                  # signed timestamps older or newer than this are refused (replays)
  dedupe:
    window: 24h                    # key: the webhook-id; or key: "{{lead.type}}:{{lead.timestamp}}"
  max_bytes: 524288               # default 512 KiB
steps:
  - name: forward
    when: lead.type == "lead.created"
    request:
      method: POST
      url: "{{settings.base_url}}/leads"
      headers: { X-API-Key: "{{settings.api_key}}" }
      body:
        json:
          email: "{{lead.data.email}}"
          first_name: '{{lead.data.first_name | default ""}}'
          source_event: "{{lead.type}}"
    timeout: 5s
    retry:
      - { on: [429, 503], action: retry, max_attempts: 3, backoff: { initial: 1s, max: 10s } }
    capture:
      id: { json: id, default: "" }
    append:
      partner.id: "{{captured.id}}"
`

const webhookTestTemplate = `# yaml-language-server: $schema=TESTSCHEMA
#
# Webhook cases for integration.yaml: each delivery is signed with the case's
# hook_secret (as the partner would sign it) and checked by the same receiver
# plumb serve runs; accepted events run through the steps against recorded
# responses from a loopback server. Nothing reaches the partner.
tests:
  - name: a new lead is forwarded
    now: 2026-01-15T12:00:00Z
    settings: { api_key: test-key, hook_secret: whsec_cGx1bWItdGVzdC1zZWNyZXQtMDAwMQ== }
    webhook:
      id: evt_1
      body_file: lead.json
    responses:
      forward: { status: 201, body: { id: P-1001 } }
    expect:
      status: 200
      outcome: success
      lead: { partner.id: P-1001 }
      requests:
        forward:
          - { method: POST, path: /leads, headers: { X-API-Key: test-key }, body: { email: jane.doe@mail.example, source_event: lead.created } }

  - name: other event types are accepted and skipped
    now: 2026-01-15T12:00:00Z
    settings: { api_key: test-key, hook_secret: whsec_cGx1bWItdGVzdC1zZWNyZXQtMDAwMQ== }
    webhook:
      id: evt_2
      body: { type: lead.deleted, timestamp: "2026-01-15T11:59:00Z", data: { id: L-1 } }
    expect: { status: 200, outcome: skip }

  - name: a forged delivery is refused
    now: 2026-01-15T12:00:00Z
    settings: { api_key: test-key, hook_secret: whsec_cGx1bWItdGVzdC1zZWNyZXQtMDAwMQ== }
    webhook: { id: evt_3, body_file: lead.json, secret: whsec_bm90LXRoZS1zZWNyZXQ= }
    expect: { status: 401 }

  - name: an unsigned delivery is refused
    now: 2026-01-15T12:00:00Z
    settings: { api_key: test-key, hook_secret: whsec_cGx1bWItdGVzdC1zZWNyZXQtMDAwMQ== }
    webhook: { id: evt_4, body_file: lead.json, sign: false }
    expect: { status: 401 }

  - name: a replayed old delivery is refused
    now: 2026-01-15T12:00:00Z
    settings: { api_key: test-key, hook_secret: whsec_cGx1bWItdGVzdC1zZWNyZXQtMDAwMQ== }
    webhook: { id: evt_5, body_file: lead.json, timestamp: "2026-01-15T11:50:00Z" }
    expect: { status: 401 }
`

const webhookEventTemplate = `{"type": "lead.created", "timestamp": "2026-01-15T11:59:30Z", "data": {"id": "L-1001", "email": "jane.doe@mail.example", "first_name": "Jane"}}
`

const webhookSettingsTemplate = `# Setting values for plumb serve / plumb try --settings. Replace them with
# real ones, or leave the secrets out and export ENV_API_KEY and
# ENV_WEBHOOK_SECRET.
api_key: replace-me
hook_secret: whsec_cmVwbGFjZS1tZQ==
`
