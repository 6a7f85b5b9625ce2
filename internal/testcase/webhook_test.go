package testcase

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

const hookIntegration = `version: 1
name: hooked
settings:
  base_url: { default: "https://crm.example" }
  secret:   { secret: true }
webhook:
  verify: { preset: standard-webhooks, secrets: ["{{settings.secret}}"], tolerance: 5m }
steps:
  - name: push
    when: lead.type == "lead.created"
    request: { method: POST, url: "{{settings.base_url}}/contacts", body: { json: { id: "{{lead.data.id}}" } } }
`

const stdSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func runHook(t *testing.T, tests string) []*CaseResult {
	t.Helper()
	dir := write(t, map[string]string{"x.yaml": hookIntegration, "x.test.yaml": tests})
	l, err := Load(filepath.Join(dir, "x.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return l.Suites[0].Run(context.Background(), Options{})
}

func TestWebhookCases(t *testing.T) {
	rs := runHook(t, `tests:
  - name: accepted and run
    now: 2026-06-01T12:00:00Z
    settings: { secret: `+stdSecret+` }
    webhook: { id: msg_1, body: { type: lead.created, data: { id: 7 } } }
    responses: { push: { status: 201 } }
    expect: { status: 200, outcome: success, requests: { push: [ { body: { id: 7 } } ] } }
  - name: stale
    now: 2026-06-01T12:00:00Z
    settings: { secret: `+stdSecret+` }
    webhook: { id: msg_1, timestamp: "2026-06-01T11:50:00Z", body: { type: lead.created, data: { id: 7 } } }
    expect: { status: 401 }
  - name: a wrong expectation is reported
    settings: { secret: `+stdSecret+` }
    webhook: { id: msg_2, sign: false, body: { type: lead.created } }
    expect: { status: 200, outcome: success }
  - name: a refused delivery cannot expect a run
    settings: { secret: `+stdSecret+` }
    webhook: { id: msg_3, secret: "whsec_b3RoZXI=", body: { type: lead.created } }
    expect: { status: 401, outcome: success }
  - name: no secret given
    webhook: { id: msg_4, body: { type: lead.created } }
`)
	if !rs[0].Passed || !rs[1].Passed {
		t.Fatalf("passing cases failed: %s / %s", failures(rs[0]), failures(rs[1]))
	}
	if rs[0].Webhook == nil || rs[0].Webhook.Status != 200 || rs[1].Webhook.Code != "stale" || rs[1].Result != nil {
		t.Errorf("answers: %+v %+v", rs[0].Webhook, rs[1].Webhook)
	}
	if got := failures(rs[2]); rs[2].Passed || !strings.Contains(got, "status: want 200, got 401 (webhook: missing signature") {
		t.Errorf("wrong status reported as %q", got)
	}
	if got := failures(rs[3]); rs[3].Passed || !strings.Contains(got, "outcome: want success, got not run") {
		t.Errorf("refused run reported as %q", got)
	}
	if got := failures(rs[4]); rs[4].Passed || !strings.Contains(got, "no signing secret has a value") {
		t.Errorf("missing secret reported as %q", got)
	}
}

func TestWebhookCaseLoadErrors(t *testing.T) {
	for _, tc := range []struct{ integ, tests, want string }{
		{integration, "tests:\n  - name: a\n    webhook: { body: {} }\n", "the integration receives no webhooks"},
		{hookIntegration, "tests:\n  - name: a\n    lead: { x: 1 }\n    webhook: { body: {} }\n", "give webhook.body, not lead"},
		{hookIntegration, "tests:\n  - name: a\n    webhook: { id: m }\n", "webhook: body is required"},
		{hookIntegration, "tests:\n  - name: a\n    webhook: { body: {} }\n    expect: { status: 500 }\n", "500 is not a receiver answer"},
		{hookIntegration, "tests:\n  - name: a\n    lead: {}\n    expect: { status: 200 }\n", "expect.status without a webhook delivery"},
		{hookIntegration, "tests:\n  - name: a\n    webhook: { body: {}, timestamp: yesterday }\n", "timestamp must be an RFC 3339 time"},
	} {
		dir := write(t, map[string]string{"x.yaml": tc.integ, "x.test.yaml": tc.tests})
		_, err := Load(filepath.Join(dir, "x.yaml"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %s", tc.tests, err, tc.want)
		}
	}
}
