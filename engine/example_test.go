package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/plumbhq/plumb/engine"
)

// Load an integration, resolve its settings once, and run it for a lead
// against a partner API (here a local test server).
func Example() {
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-API-Key") != "demo-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"is_blacklisted": false, "risk_score": 12}`)
	}))
	defer partner.Close()

	integration := []byte(`
version: 1
name: internal-blacklist
settings:
  api_key:  { required: true, secret: true }
  base_url: { default: "https://api.internal.com" }
steps:
  - name: check
    request:
      method: POST
      url: "{{settings.base_url}}/blacklist/check"
      headers: { X-API-Key: "{{settings.api_key}}" }
      body:
        json: { email: "{{lead.email}}", phone: "{{ lead.phone | digits }}" }
    timeout: 2s
    capture:
      blacklisted: { json: is_blacklisted }
      score:       { json: risk_score, type: number }
    outcome:
      failure_when: captured.blacklisted == true
    append:
      risk_score: "{{captured.score}}"
`)
	plan, err := engine.Parse("blacklist.yaml", integration)
	if err != nil {
		fmt.Println(err)
		return
	}
	settings, err := plan.Settings(map[string]any{"api_key": "demo-key", "base_url": partner.URL}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	res := plan.Run(context.Background(), map[string]any{"email": "ann@example.com", "phone": "(512) 555-0100"}, settings)
	fmt.Println(res.Outcome, res.Steps[0].Status, res.Lead["risk_score"])
	// Output: success 200 12
}
