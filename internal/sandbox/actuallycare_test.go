package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestActuallyCareAPI(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	call := func(method, path, key, body string) (int, map[string]any, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	if code, m, _ := call("GET", "/v1/leads", "", ""); code != 401 || m["success"] != false {
		t.Errorf("no key: %d %v", code, m)
	}
	code, m, h := call("GET", "/v1/leads?page=6&limit=25", APIKey, "")
	data := m["data"].(map[string]any)
	meta := data["meta"].(map[string]any)
	if code != 200 || len(data["leads"].([]any)) != 7 || meta["hasMore"] != false || meta["total"] != 132.0 || h.Get("Link") != "" {
		t.Errorf("last page: %d %v", code, meta)
	}
	_, m, h = call("GET", "/v1/leads?limit=100", APIKey, "")
	meta = m["data"].(map[string]any)["meta"].(map[string]any)
	if meta["hasMore"] != true || meta["nextCursor"] != "c_2s" || !strings.Contains(h.Get("Link"), `cursor=c_2s&limit=100>; rel="next"`) {
		t.Errorf("first page: %v, Link %s", meta, h.Get("Link"))
	}
	_, m, _ = call("GET", "/v1/leads?email=lead005@actuallycare.example", APIKey, "")
	if leads := m["data"].(map[string]any)["leads"].([]any); len(leads) != 1 {
		t.Errorf("by email: %v", leads)
	}
	if code, _, _ := call("POST", "/v1/leads", APIKey, `{"name":"New","email":"new@x.example"}`); code != 201 {
		t.Errorf("create: %d", code)
	}
	if code, _, _ := call("PUT", "/v1/leads/nope", APIKey, `{"status":"synced"}`); code != 404 {
		t.Errorf("update unknown: %d", code)
	}
	if code, _, _ := call("POST", "/crm/v1/contacts", APIKey, `{"email":"a@b.example","name":"A"}`); code != 201 {
		t.Errorf("crm create: %d", code)
	}
	if code, _, _ := call("POST", "/crm/v1/contacts", APIKey, `{"email":"a@b.example","name":"A"}`); code != 409 {
		t.Errorf("crm create twice: %d", code)
	}
	if s.ActuallyCare().Creates()["a@b.example"] != 2 || s.ActuallyCare().Requests()["GET /v1/leads?email"] != 1 {
		t.Errorf("counters: %v %v", s.ActuallyCare().Creates(), s.ActuallyCare().Requests())
	}
}
