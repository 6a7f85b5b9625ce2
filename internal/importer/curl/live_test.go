package curl

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
)

// An imported curl line runs against a real server: the key the line
// carried is now a setting, the body's fields come from the lead.
func TestImportedLineRunsAgainstServer(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "live-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"L-1"}`))
	}))
	defer srv.Close()
	in, err := Import(`curl -X POST `+srv.URL+`/v1/leads -H 'X-API-Key: recorded-key' -H 'Content-Type: application/json' -d '{"email":"a@b.example","zip":"00501"}'`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := in.YAML()
	if strings.Contains(string(src), "recorded-key") {
		t.Fatalf("the key was copied:\n%s", src)
	}
	plan, err := engine.Parse("curl.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]engine.Outcome{"live-key": engine.Success, "recorded-key-not-live": engine.Error} {
		r, err := plan.Bind(engine.Config{Values: map[string]any{"api_key": key}})
		if err != nil {
			t.Fatal(err)
		}
		res := r.Run(context.Background(), map[string]any{"email": "jane@example.com", "zip": "78701"})
		r.Close(context.Background())
		if res.Outcome != want {
			t.Errorf("key %s: want %s, got %s %q", key, want, res.Outcome, res.Reason)
		}
	}
	if got["email"] != "jane@example.com" || got["zip"] != "78701" {
		t.Errorf("the server got %v", got)
	}
}
