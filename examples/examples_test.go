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
			check(t, "lead.json", r, want.lead)
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
				check(t, "leads.ndjson line "+strconv.Itoa(i+1), r, want.leads[i])
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

func check(t *testing.T, what string, r *engine.Result, want engine.Outcome) {
	t.Helper()
	if r.Outcome != want {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Errorf("%s: outcome %s, want %s\n%s", what, r.Outcome, want, b)
	}
	for _, st := range r.Steps {
		if st.Outcome == engine.Error {
			t.Errorf("%s: step %s errored: %s", what, st.Name, st.Reason)
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
