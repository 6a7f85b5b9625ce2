// Package examples_test runs every example integration with its test leads
// against the sandbox, through the engine, and checks each lead's outcome.
package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/examples/sandbox"
)

// example is what each example's leads must come to.
type example struct {
	lead  engine.Outcome   // outcome of lead.json
	leads []engine.Outcome // outcome of each line of leads.ndjson
	// appended are lead fields (dotted paths) lead.json must end with.
	appended map[string]any
}

// detail holds optional checks of an example, beyond its outcomes. It is a
// table of its own so the positional entries of expectations stay valid.
type detail struct {
	// steps are checks of single steps of single leads.
	steps []stepWant
	// stepErrors names steps that end in error on purpose (on_error:
	// continue) without making the lead an error.
	stepErrors []string
}

// stepWant is what one step of one lead must come to; zero fields are not
// checked.
type stepWant struct {
	line     int // 0: lead.json, n: line n of leads.ndjson
	step     string
	outcome  engine.Outcome
	attempts int
	fallback string // the fallback link that answered; "-" for none
	reason   string // a substring of the step's reason
	// lead holds lead fields (dotted paths) the lead must end with.
	lead map[string]any
}

const (
	success = engine.Success
	failure = engine.Failure
	skip    = engine.Skip
)

var expectations = map[string]example{
	"blacklist": {success, []engine.Outcome{success, failure, skip, success},
		map[string]any{"blacklisted": false, "blacklist.reason": ""}},
	"regional-router": {success, []engine.Outcome{success, success, success, failure, failure},
		map[string]any{"region": "regional", "tier": "regional"}},
	"partner-submit": {success, []engine.Outcome{success, success, failure},
		map[string]any{"partner.status": "accepted"}},
	"soap-validate": {success, []engine.Outcome{success, success, failure},
		map[string]any{"soap.status": "Success"}},
	"text-split": {success, []engine.Outcome{success, success, failure, failure},
		map[string]any{"validation.status": "SUCCESS"}},
	"regex-accept": {success, []engine.Outcome{success, success, failure, failure},
		map[string]any{"buyer.price": 45.0}},
	"token-then-call": {success, []engine.Outcome{success, success, failure},
		map[string]any{"validation.valid": true}},
	"resilient-enrichment": {success, []engine.Outcome{success, success, success, success, failure, success, success, success, success},
		map[string]any{"firm.name": "Acme", "firm.source": "primary", "crm.status": "accepted"}},
	"oauth2-client-credentials": {success, []engine.Outcome{success, success, success, failure, failure},
		map[string]any{"partner.status": "accepted"}},
	"hmac-signing": {success, []engine.Outcome{success, success, failure},
		map[string]any{"partner.price": 34.0}},
	"token-rotation": {success, []engine.Outcome{success, success, failure, success},
		map[string]any{"partner.id": "R-5cc2aa9ec68d"}},
}

var details = map[string]detail{
	"resilient-enrichment": {
		[]stepWant{
			{line: 1, step: "firmographics", outcome: success, attempts: 1, fallback: "-"},
			{line: 2, step: "firmographics", outcome: success, attempts: 2, fallback: "-", lead: map[string]any{"firm.name": "Globex"}}, // 429, Retry-After
			{line: 3, step: "firmographics", outcome: success, attempts: 3, fallback: "-"},                                              // 500, dropped connection
			{line: 4, step: "firmographics", outcome: success, attempts: 2, fallback: "-"},                                              // timeout
			{line: 5, step: "firmographics", outcome: failure, attempts: 1, reason: "freemail.example is a personal email domain"},      // 422, no retry
			{line: 6, step: "firmographics", outcome: success, attempts: 2, fallback: "request", lead: map[string]any{"firm.source": "backup"}},
			{line: 7, step: "firmographics", outcome: success, fallback: "cache", lead: map[string]any{"firm.name": "Acme", "manual_review": nil}},
			{line: 8, step: "firmographics", outcome: success, fallback: "defaults",
				lead: map[string]any{"firm.name": "Stark Industries", "firm.industry": "unknown", "manual_review": true, "crm.status": "queued_for_review"}},
			{line: 9, step: "firmographics", outcome: skip, fallback: "skip", reason: "enrichment unavailable for max.payne@wayne.example"},
			{line: 9, step: "social", outcome: engine.Error, attempts: 2, reason: "social profiles are down"},
			{line: 9, step: "deliver", outcome: success, lead: map[string]any{"crm.status": "accepted"}},
		},
		[]string{"social"}},
	"oauth2-client-credentials": {
		[]stepWant{
			{line: 0, step: "submit", attempts: 1},
			{line: 1, step: "submit", attempts: 1},
			{line: 2, step: "submit", outcome: success, attempts: 2}, // 401 for a revoked token, reauth, retry
			{line: 3, step: "submit", attempts: 1},
			{line: 4, step: "submit", outcome: failure, reason: "not a deliverable address"},
			{line: 5, step: "submit", outcome: failure, reason: "duplicate lead"},
		}, nil},
	"hmac-signing": {
		[]stepWant{{line: 3, step: "submit", outcome: failure, reason: "nobody@invalid.example is not a deliverable address"}}, nil},
	"token-rotation": {
		[]stepWant{
			{line: 0, step: "submit", outcome: success, attempts: 2}, // token_a is retired: 401, next token
			{line: 1, step: "submit", outcome: success, attempts: 1}, // token_a is skipped from then on
			{line: 2, step: "submit", outcome: success, attempts: 1},
			{line: 4, step: "submit", outcome: success, attempts: 1},
		}, nil},
}

func TestExamples(t *testing.T) {
	srv := httptest.NewServer(sandbox.Handler())
	t.Cleanup(srv.Close) // after the parallel subtests

	files, err := filepath.Glob(filepath.Join("*", "integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := filepath.Dir(file)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := expectations[name]
			if !ok {
				t.Fatalf("examples/%s has no expectations in examples_test.go", name)
			}
			plan, err := engine.Load(file, engine.WithHTTPClient(srv.Client()))
			if err != nil {
				t.Fatalf("load:\n%v", err)
			}
			given := readSettings(t, filepath.Join(name, "settings.yaml"))
			given["base_url"] = srv.URL
			settings, err := plan.Settings(given, nil)
			if err != nil {
				t.Fatalf("settings:\n%v", err)
			}
			ctx := context.Background()

			lead := readLeads(t, filepath.Join(name, "lead.json"))
			if len(lead) != 1 {
				t.Fatalf("lead.json holds %d leads, want 1", len(lead))
			}
			r := plan.Run(ctx, lead[0], settings)
			check(t, "lead.json", r, want.lead, details[name].stepErrors...)
			checkSteps(t, "lead.json", r, 0, details[name].steps)
			for path, v := range want.appended {
				if got := lookup(r.Lead, path); got != v {
					t.Errorf("lead.json: lead.%s = %#v, want %#v", path, got, v)
				}
			}

			leads := readLeads(t, filepath.Join(name, "leads.ndjson"))
			if len(leads) != len(want.leads) {
				t.Fatalf("leads.ndjson holds %d leads, expectations list %d", len(leads), len(want.leads))
			}
			var failures int
			for i, l := range leads {
				r := plan.Run(ctx, l, settings)
				check(t, "leads.ndjson line "+strconv.Itoa(i+1), r, want.leads[i], details[name].stepErrors...)
				checkSteps(t, "leads.ndjson line "+strconv.Itoa(i+1), r, i+1, details[name].steps)
				if r.Outcome == failure {
					failures++
				}
			}
			if failures == 0 {
				t.Errorf("leads.ndjson should hold at least one lead that fails")
			}
		})
	}
	for name := range expectations {
		if !seen[name] {
			t.Errorf("expected example %s has no %s/integration.yaml", name, name)
		}
	}
}

func check(t *testing.T, what string, r *engine.Result, want engine.Outcome, stepErrors ...string) {
	t.Helper()
	if r.Outcome != want {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Errorf("%s: outcome %s, want %s\n%s", what, r.Outcome, want, b)
	}
	for _, st := range r.Steps {
		if st.Outcome == engine.Error && !slices.Contains(stepErrors, st.Name) {
			t.Errorf("%s: step %s errored: %s", what, st.Name, st.Reason)
		}
	}
}

// checkSteps checks the wants of input line (0: lead.json) against r.
func checkSteps(t *testing.T, what string, r *engine.Result, line int, wants []stepWant) {
	t.Helper()
	for _, w := range wants {
		if w.line != line {
			continue
		}
		i := slices.IndexFunc(r.Steps, func(s engine.StepResult) bool { return s.Name == w.step })
		if i < 0 {
			t.Errorf("%s: step %s did not run", what, w.step)
			continue
		}
		st := r.Steps[i]
		fallback := st.Fallback
		if fallback == "" {
			fallback = "-"
		}
		switch {
		case w.outcome != "" && st.Outcome != w.outcome:
			t.Errorf("%s: step %s outcome %s, want %s (%s)", what, w.step, st.Outcome, w.outcome, st.Reason)
		case w.attempts != 0 && st.Attempts != w.attempts:
			t.Errorf("%s: step %s made %d attempts, want %d (%s)", what, w.step, st.Attempts, w.attempts, st.Reason)
		case w.fallback != "" && fallback != w.fallback:
			t.Errorf("%s: step %s answered by fallback %s, want %s (tried %q)", what, w.step, fallback, w.fallback, st.Tried)
		case !strings.Contains(st.Reason, w.reason):
			t.Errorf("%s: step %s reason %q, want it to contain %q", what, w.step, st.Reason, w.reason)
		}
		for path, v := range w.lead {
			if got := lookup(r.Lead, path); got != v {
				t.Errorf("%s: lead.%s = %#v, want %#v", what, path, got, v)
			}
		}
	}
}

func readSettings(t *testing.T, path string) map[string]any {
	t.Helper()
	m := map[string]any{}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return m
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func readLeads(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lookup follows a dotted path through nested maps.
func lookup(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}
