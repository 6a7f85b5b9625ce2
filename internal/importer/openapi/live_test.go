package openapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// run binds an imported integration to settings and runs one lead.
func run(t *testing.T, src []byte, settings, lead map[string]any) *engine.Result {
	t.Helper()
	plan, err := engine.Parse("imported.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{Values: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	return r.Run(context.Background(), lead)
}

// leadsServer implements the partner spec's createLead: it refuses a
// request without the API key (401) and checks what the spec requires.
func leadsServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/v2/leads" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Header.Get("X-API-Key") != "live-key" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthorized","message":"bad API key"}}`))
			return
		}
		var lead map[string]any
		if err := json.NewDecoder(r.Body).Decode(&lead); err != nil || r.Header.Get("Idempotency-Key") == "" ||
			lead["consent"] != true || r.URL.Query().Get("channel") != "web" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"code":"invalid","message":"missing consent or idempotency key"}}`))
			return
		}
		if lead["email"] == "taken@example.com" {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"duplicate","message":"already submitted"}}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": "L-7", "status": "accepted", "score": 91.5, "duplicate": false})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// An imported integration runs against a real server implementing the
// operation: the API key reaches it, a wrong one is refused server-side,
// and the partner's message is the failure's reason.
func TestImportedRunsAgainstServer(t *testing.T) {
	_, out := mustImport(t, "partner.yaml", Options{Operation: "createLead"})
	srv := leadsServer(t)
	lead := map[string]any{"email": "jane@example.com", "first_name": "Jane", "consent": true, "Idempotency_Key": "k-1"}
	res := run(t, []byte(out), map[string]any{"base_url": srv.URL + "/v2", "api_key": "live-key"}, lead)
	if res.Outcome != engine.Success || res.Steps[0].Captured["id"] != "L-7" || res.Steps[0].Captured["score"] != 91.5 {
		t.Fatalf("want success with id L-7, got %s %q %v", res.Outcome, res.Reason, res.Steps[0].Captured)
	}
	res = run(t, []byte(out), map[string]any{"base_url": srv.URL + "/v2", "api_key": "wrong"}, lead)
	if res.Outcome != engine.Error || res.Steps[0].Status != http.StatusUnauthorized {
		t.Fatalf("a wrong key: want an error with 401, got %s %d", res.Outcome, res.Steps[0].Status)
	}
	lead["email"] = "taken@example.com"
	res = run(t, []byte(out), map[string]any{"base_url": srv.URL + "/v2", "api_key": "live-key"}, lead)
	if res.Outcome != engine.Failure || res.Reason == "" || !strings.Contains(res.Reason, "already submitted") {
		t.Fatalf("a duplicate: want a failure with the partner's message, got %s %q", res.Outcome, res.Reason)
	}
}

// The Museum's basic auth and the partner's OAuth2 client credentials
// reach servers that check them.
func TestImportedAuthAgainstServers(t *testing.T) {
	_, museum := mustImport(t, "redocly/museum.yaml", Options{Operation: "buyMuseumTickets"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "curator" || p != "pw-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"message":"ok","confirmationCode":"C-1","ticketType":"general","ticketDate":"2024-01-02"}`))
	}))
	defer srv.Close()
	lead := map[string]any{"ticketType": "general", "ticketDate": "2024-01-02"}
	res := run(t, []byte(museum), map[string]any{"base_url": srv.URL, "username": "curator", "password": "pw-1"}, lead)
	if res.Outcome != engine.Success || res.Steps[0].Captured["confirmation_code"] != "C-1" {
		t.Fatalf("museum: want success, got %s %q", res.Outcome, res.Reason)
	}

	oauth := oauthtest.New(t, oauthtest.Options{})
	_, getLead := mustImport(t, "partner.yaml", Options{Operation: "getLead"})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(http.MethodGet, oauth.APIURL(), nil)
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, err := oauth.Client().Do(req)
		if err != nil || resp.StatusCode != http.StatusOK || r.URL.Path != "/leads/L-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"L-1","status":"queued"}`))
	}))
	defer api.Close()
	settings := map[string]any{"base_url": api.URL, "token_url": oauth.TokenURL(), "client_id": oauthtest.ClientID, "client_secret": oauthtest.ClientSecret}
	res = run(t, []byte(getLead), settings, map[string]any{"leadId": "L-1"})
	if res.Outcome != engine.Success || res.Steps[0].Captured["status"] != "queued" || oauth.GrantCount("client_credentials") != 1 {
		t.Fatalf("oauth2: want success with one token grant, got %s %q (%d grants)", res.Outcome, res.Reason, oauth.GrantCount("client_credentials"))
	}
	settings["client_secret"] = "wrong"
	if res = run(t, []byte(getLead), settings, map[string]any{"leadId": "L-1"}); res.Outcome != engine.Error {
		t.Fatalf("oauth2 with a wrong secret: want an error, got %s", res.Outcome)
	}
}
