// Package examples_test runs every example integration with its test leads
// against the sandbox, through the engine, and checks each lead's outcome.
package examples_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/sandbox"
	"github.com/plumbhq/plumb/internal/testkit"
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

// noSandbox names the examples the sandbox cannot run, and why; their
// stored test cases still run (TestStoredTestCases).
var noSandbox = map[string]string{
	// the user's login is the point: its CLI login and the service's
	// install flow run against a real OAuth2 server in
	// cmd/plumb/internal/cli (TestExampleAuthCodeLogin) and internal/serve
	// (TestExampleAuthCodeInstall)
	"oauth2-authorization-code": "the sandbox has no authorization server",
}

// concurrent names the examples whose leads.ndjson runs all at once through
// Runner.RunAll, as a batch step needs (plumb run does the same); their
// lead.json runs alone through RunAll too.
var concurrent = map[string]bool{"batch-validate": true}

// stepWant is what one step of one lead must come to; zero fields are not
// checked.
type stepWant struct {
	line     int // 0: lead.json, n: line n of leads.ndjson
	step     string
	outcome  engine.Outcome
	attempts int
	fallback string // the fallback link that answered; "-" for none
	variant  int    // the 1-based variant taken; -1 for none
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
	"parallel-validation": {success, []engine.Outcome{success, success, failure, failure, failure, success},
		map[string]any{"delivery.type": "B2C", "delivery.price": 25.0}},
	"batch-validate": {success, []engine.Outcome{success, success, failure, success, success, failure, success, engine.Error, success, success, success, success},
		map[string]any{"validation.valid": true, "validation.score": 72.0}},
	"actuallycare-sync": {success, []engine.Outcome{success, success, failure, failure},
		map[string]any{"crm.action": "created", "status": "synced"}},
	// the events plumb serve would hand to the steps after verifying them
	"actuallycare-webhook": {success, []engine.Outcome{success, success, failure, skip},
		map[string]any{"crm.action": "created"}},
}

var details = map[string]detail{
	"actuallycare-webhook": {
		[]stepWant{
			{line: 1, step: "create", outcome: success, lead: map[string]any{"crm.action": "created"}},
			{line: 2, step: "create", outcome: skip}, // lead.status_changed for the contact just created
			{line: 2, step: "update", outcome: success, lead: map[string]any{"crm.action": "updated"}},
			{line: 3, step: "create", outcome: failure, reason: "lead503@invalid.example is not a deliverable address"},
			{line: 4, step: "find", outcome: skip}, // not a lead.* event
		}, nil},
	"actuallycare-sync": {
		[]stepWant{
			{line: 1, step: "create", outcome: success, lead: map[string]any{"crm.action": "created"}},
			{line: 2, step: "create", outcome: skip}, // check before create: lead 2 is in the CRM now
			{line: 2, step: "update", outcome: skip}, // … with the same data: not written again
			{line: 2, step: "write_back", outcome: success, lead: map[string]any{"status": "synced"}},
			{line: 3, step: "create", outcome: failure, reason: "lead077@invalid.example is not a deliverable address"},
			{line: 4, step: "write_back", outcome: failure, reason: "not found"},
		}, nil},
	"regional-router": {
		[]stepWant{
			{line: 0, step: "validate", outcome: success, variant: 2, lead: map[string]any{"tier": "regional"}},
			{line: 1, step: "validate", outcome: success, variant: 2, lead: map[string]any{"tier": "regional"}}, // CA
			{line: 2, step: "validate", outcome: success, variant: 1, lead: map[string]any{"tier": "premium"}},  // value 250
			{line: 3, step: "validate", outcome: success, variant: 3, lead: map[string]any{"tier": "standard"}}, // OH
			{line: 4, step: "validate", outcome: failure, variant: 2, reason: "regional validation rejected bob@invalid.example"},
			{line: 5, step: "locate", outcome: failure, variant: -1, reason: "no buyer for boat leads in FL"},
		}, nil},
	"parallel-validation": {
		[]stepWant{
			{line: 2, step: "deliver", outcome: success, lead: map[string]any{"delivery.type": "B2B", "delivery.price": 35.0}},
			{line: 3, step: "email", outcome: failure, reason: "nobody@invalid.example is not a deliverable address"},
			{line: 3, step: "blacklist", outcome: success},
			{line: 4, step: "blacklist", outcome: failure, reason: "email domain blocked.example is blacklisted"},
			{line: 5, step: "deliver", outcome: failure, reason: "delivery refused: applicant is under 18"},
			{line: 6, step: "deliver", outcome: success, lead: map[string]any{"delivery.price": 20.0}}, // phone invalid
		}, nil},
	"batch-validate": {
		[]stepWant{
			{line: 3, step: "validate", outcome: failure, reason: "nobody@invalid.example is not a deliverable address"},
			{line: 6, step: "validate", outcome: failure, reason: "email domain blocked.example is blacklisted"},
			{line: 8, step: "validate", outcome: engine.Error, reason: `no result for lead id "L-008"`},
		}, nil},
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
			{line: 9, step: "social", outcome: engine.Error, attempts: 0, reason: "circuit breaker open after 3 consecutive errors"}, // leads 1-8 errored it
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
			if why, ok := noSandbox[name]; ok {
				t.Skip(why)
			}
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
			settings, err := plan.Bind(engine.Config{Values: given})
			if err != nil {
				t.Fatalf("settings:\n%v", err)
			}
			ctx := context.Background()

			lead := readLeads(t, filepath.Join(name, "lead.json"))
			if len(lead) != 1 {
				t.Fatalf("lead.json holds %d leads, want 1", len(lead))
			}
			var r *engine.Result
			if concurrent[name] {
				// alone in its batch: flushed as soon as it waits in it
				one, err := plan.Bind(engine.Config{Values: given})
				if err != nil {
					t.Fatal(err)
				}
				defer one.Close(context.Background())
				r = runAtOnce(ctx, one, lead, nil)[0]
			} else {
				r = settings.Run(ctx, lead[0])
			}
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
			var results []*engine.Result
			if concurrent[name] {
				results = runAtOnce(ctx, settings, leads, nil)
			} else {
				for _, l := range leads {
					results = append(results, settings.Run(ctx, l))
				}
			}
			var failures int
			for i, r := range results {
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
		// a lead meant to end in error has its erroring step
		if st.Outcome == engine.Error && !slices.Contains(stepErrors, st.Name) && !(want == engine.Error && st.Name == r.Step) {
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
		case w.variant != 0 && st.Variant != max(w.variant, 0):
			t.Errorf("%s: step %s took variant %d, want %d (%s %s)", what, w.step, st.Variant, max(w.variant, 0), st.Method, st.URL)
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

// runAtOnce runs every lead at the same time through settings.RunAll and
// returns their results in order. RunAll sends the last, partial batches as
// soon as every lead waits in one. ready, if not nil, is called once every
// lead has been handed to a worker.
func runAtOnce(ctx context.Context, settings *engine.Runner, leads []map[string]any, ready func()) []*engine.Result {
	results := make([]*engine.Result, len(leads))
	seq := func(yield func(map[string]any, error) bool) {
		for _, l := range leads {
			if !yield(l, nil) {
				return
			}
		}
		if ready != nil {
			ready()
		}
	}
	for i, r := range settings.RunAll(ctx, seq, engine.RunAllOptions{Concurrency: len(leads)}) {
		results[i] = r
	}
	return results
}

// loadExample loads examples/name against srv with its settings.yaml.
func loadExample(t *testing.T, name string, srv *httptest.Server) (*engine.Plan, *engine.Runner) {
	t.Helper()
	plan, err := engine.Load(filepath.Join(name, "integration.yaml"), engine.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	given := readSettings(t, filepath.Join(name, "settings.yaml"))
	given["base_url"] = srv.URL
	settings, err := plan.Bind(engine.Config{Values: given})
	if err != nil {
		t.Fatalf("settings:\n%v", err)
	}
	t.Cleanup(func() { settings.Close(context.Background()) })
	return plan, settings
}

// TestParallelValidationOverlaps checks the three checks of
// parallel-validation run at the same time. In front of the sandbox, each
// /checks/ request of a lead waits at a barrier until all three of that lead
// have arrived: run one after the other, the first would wait alone until
// its 2s timeout and the lead would fail. Nothing here measures time.
func TestParallelValidationOverlaps(t *testing.T) {
	sb := sandbox.New()
	var mu sync.Mutex
	var gate *testkit.Barrier
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/checks/") {
			mu.Lock()
			g := gate
			mu.Unlock()
			if !g.Wait(r.Context()) {
				return // the client gave up: the checks did not overlap
			}
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, settings := loadExample(t, "parallel-validation", srv)
	leads := readLeads(t, filepath.Join("parallel-validation", "leads.ndjson"))
	for i, l := range leads { // one lead at a time: the overlap is within a lead
		mu.Lock()
		gate = testkit.NewBarrier(3)
		mu.Unlock()
		r := settings.Run(context.Background(), l)
		checks := 0
		for _, st := range r.Steps {
			switch st.Name {
			case "email", "phone", "blacklist":
				checks++
				if st.Status != 200 {
					t.Errorf("lead %d: check %s: %s %d %s (the three checks were not at the partner together)", i+1, st.Name, st.Outcome, st.Status, st.Reason)
				}
			}
		}
		if checks != 3 {
			t.Errorf("lead %d: %d checks ran, want 3: %+v", i+1, checks, r.Steps)
		}
	}
}

// TestBatchValidateBatches runs batch-validate's 12 leads at once: they go
// in three requests (5, 5 and the last 2, sent by Flush), every lead knows
// its batch, and each lead's outcome comes from its own result.
func TestBatchValidateBatches(t *testing.T) {
	sb := sandbox.New()
	srv := httptest.NewServer(sb)
	defer srv.Close()
	_, settings := loadExample(t, "batch-validate", srv)
	leads := readLeads(t, filepath.Join("batch-validate", "leads.ndjson"))
	start := time.Now()
	// RunAll announces each lead before handing it to a worker, so the
	// last, partial batch waits for every lead and goes once the input
	// ends: no sleep, no grace period.
	results := runAtOnce(context.Background(), settings, leads, nil)
	t.Logf("%d leads in %s", len(leads), time.Since(start))
	sizes := sb.BatchSizes()
	slices.Sort(sizes) // the batches are sent concurrently
	if !slices.Equal(sizes, []int{2, 5, 5}) {
		t.Errorf("the sandbox received batches of %v leads, want 5, 5 and 2", sizes)
	}
	members := map[string]int{}
	for i, r := range results {
		what := "leads.ndjson line " + strconv.Itoa(i+1)
		check(t, what, r, expectations["batch-validate"].leads[i])
		checkSteps(t, what, r, i+1, details["batch-validate"].steps)
		if len(r.Steps) != 1 || r.Steps[0].Batch == "" {
			t.Errorf("%s: no batch id in %+v", what, r.Steps)
			continue
		}
		members[r.Steps[0].Batch]++
	}
	counts := slices.Sorted(maps.Values(members))
	if !slices.Equal(counts, []int{2, 5, 5}) {
		t.Errorf("leads per batch id %v, want 5, 5 and 2", members)
	}
}
