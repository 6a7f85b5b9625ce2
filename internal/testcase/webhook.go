package testcase

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/hookjob"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/webhook"
)

// WebhookCase is an inbound delivery to the integration's webhook receiver:
// its body and how it is signed. The case's settings hold the hook's
// secret; by default the delivery is signed with it, at the case's now.
// An accepted delivery (200) then runs through the steps as the lead; a
// refused one runs nothing.
type WebhookCase struct {
	// Body is the event: a mapping (sent as compact JSON) or text sent as
	// is; BodyFile names a file holding it instead.
	Body     Value  `yaml:"body"`
	BodyFile string `yaml:"body_file"`
	// ContentType defaults to application/json.
	ContentType string `yaml:"content_type"`
	// Headers are added after signing (and win over the signature's).
	Headers Map[string] `yaml:"headers"`
	// ID is the event id the sender signs or sends (standard-webhooks,
	// svix and hmac with {id} need one; default evt_test).
	ID string `yaml:"id"`
	// Timestamp is the signed time (RFC 3339; default the case's now), to
	// test the tolerance.
	Timestamp string `yaml:"timestamp"`
	// Sign: false sends the delivery unsigned.
	Sign *bool `yaml:"sign"`
	// Secret signs with this secret instead of the hook's (a forgery).
	Secret string    `yaml:"secret"`
	Pos    steps.Pos `yaml:"-"`

	body []byte
	ts   time.Time
}

// WebhookAnswer is what the receiver answered a case's delivery.
type WebhookAnswer struct {
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
}

// receiverStatuses are the statuses a receiver answers.
var receiverStatuses = []int{200, 400, 401, 413, 415}

// checkWebhook checks a case's webhook: block against the integration.
func (l *loader) checkWebhook(s *Suite, c *Case, dir string) {
	add := func(pos steps.Pos, hint, format string, args ...any) { l.errs.Add(pos, hint, format, args...) }
	w := c.Webhook
	if w == nil {
		if c.Expect.Status != 0 {
			add(c.Expect.Pos, "expect.status is the webhook receiver's answer: add webhook: { body: … }", "test %q: expect.status without a webhook delivery", c.Name)
		}
		return
	}
	if s.In.Webhook == nil {
		add(w.Pos, "add a webhook: section to the integration, or use lead: for an ordinary case", "test %q: the integration receives no webhooks", c.Name)
	}
	if c.Lead.Set || c.LeadFile != "" {
		add(c.Pos, "the event's body is the lead", "test %q: give webhook.body, not lead", c.Name)
	}
	switch {
	case w.Body.Set && w.BodyFile != "":
		add(w.Pos, "", "webhook: give body or body_file, not both")
	case w.BodyFile != "":
		b, err := steps.ReadFileMax(filepath.Join(dir, w.BodyFile), maxBodyFile)
		if err != nil {
			add(w.Pos, "body_file is relative to the file the test is written in", "webhook: body_file: %v", errors.Unwrap(err))
		}
		w.body = b
	case w.Body.Set:
		if text, ok := w.Body.V.(string); ok {
			w.body = []byte(text)
			break
		}
		b, err := json.Marshal(w.Body.V)
		if err != nil {
			add(w.Body.Pos, "", "webhook: body: %v", err)
		}
		w.body = b
	default:
		add(w.Pos, "e.g. body: { event: lead.created, timestamp: \"…\", data: {…} }", "webhook: body is required")
	}
	if w.Timestamp != "" {
		t, err := time.Parse(time.RFC3339, w.Timestamp)
		if err != nil {
			add(w.Pos, "e.g. timestamp: 2024-06-01T11:50:00Z", "webhook: timestamp must be an RFC 3339 time, got %q", w.Timestamp)
		}
		w.ts = t
	}
	if st := c.Expect.Status; st != 0 && !slices.Contains(receiverStatuses, st) {
		add(c.Expect.Pos, "a receiver answers 200, 400, 401, 413 or 415", "expect.status: %d is not a receiver answer", st)
	}
}

// deliver plays the case's delivery against the integration's receiver,
// built from the runner's settings: it returns the lead to run when the
// delivery is accepted.
func (s *Suite) deliver(c *Case, runner *engine.Runner, now func() time.Time) (map[string]any, *WebhookAnswer, []Failure) {
	w := c.Webhook
	cfg, err := runner.HookConfig()
	if err != nil {
		return nil, nil, []Failure{{Path: "settings", Message: err.Error()}}
	}
	hook, err := webhook.NewHook(cfg, now)
	if err != nil {
		return nil, nil, []Failure{{Path: "webhook", Message: err.Error()}}
	}
	h := http.Header{}
	if w.Sign == nil || *w.Sign {
		signer := hook.Verifier()
		if w.Secret != "" {
			sc := cfg.Verify
			sc.Secrets = []string{w.Secret}
			if signer, err = webhook.New(sc, now); err != nil {
				return nil, nil, []Failure{{Path: "webhook.secret", Message: err.Error()}}
			}
		}
		id := w.ID
		if id == "" {
			id = "evt_test"
		}
		if h, err = signer.Sign(w.body, id, w.ts); err != nil {
			return nil, nil, []Failure{{Path: "webhook", Message: err.Error()}}
		}
	}
	ct := w.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	for _, e := range w.Headers {
		h.Set(e.Key, e.Value)
	}
	d, err := hook.Receive(h, strings.NewReader(string(w.body)))
	ans := &WebhookAnswer{Status: http.StatusOK}
	if err != nil {
		ans = &WebhookAnswer{Status: webhook.Status(err), Code: webhook.Code(err), Error: err.Error()}
	}
	want := c.Expect.Status
	if want == 0 {
		want = http.StatusOK
	}
	if ans.Status != want {
		got := fmt.Sprint(ans.Status)
		if ans.Error != "" {
			got += " (" + ans.Error + ")"
		}
		return nil, ans, []Failure{{Path: "status", Want: fmt.Sprint(want), Got: got}}
	}
	if err != nil {
		return nil, ans, nil
	}
	_, stored, err := hookjob.Decode(hookjob.Encode(s.In.Name.Value, d)) // as plumb serve stores and reads it
	if err == nil {
		var lead map[string]any
		if lead, err = hook.Lead(stored); err == nil {
			return lead, ans, nil
		}
	}
	return nil, ans, []Failure{{Path: "webhook", Message: err.Error()}}
}

// refusedExpectations reports the expectations of a case whose delivery
// was refused (as it should be) that would need a run.
func refusedExpectations(c *Case, reqs []Request) []Failure {
	var fs []Failure
	x := &c.Expect
	if x.Outcome != "" {
		fs = append(fs, Failure{Path: "outcome", Want: x.Outcome, Got: "not run (the delivery was refused)"})
	}
	if len(x.Steps) > 0 || len(x.Captured) > 0 || len(x.Requests) > 0 || x.Lead.Set {
		fs = append(fs, Failure{Path: "expect", Message: "a refused delivery runs no step: expect only its status"})
	}
	if len(reqs) > 0 {
		fs = append(fs, Failure{Path: "requests", Message: fmt.Sprintf("%d requests were sent for a refused delivery", len(reqs))})
	}
	return fs
}
