package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/plumbhq/plumb/engine"
)

// partner stands for the blacklist API the integration calls.
func partner(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "test-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		var in struct{ Email string }
		json.Unmarshal(b, &in)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(in.Email, "fraud") {
			io.WriteString(w, `{"is_blacklisted": true, "risk_score": 97}`)
			return
		}
		io.WriteString(w, `{"is_blacklisted": false, "risk_score": 12}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}

// service loads blacklist.yaml as main does, with its env settings
// pointing at base, and serves newHandler.
func service(t *testing.T, base string) (*httptest.Server, *engine.Runner) {
	env := map[string]string{"BLACKLIST_API_KEY": "test-key", "BLACKLIST_BASE_URL": base}
	plan, err := engine.Load("blacklist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runner, err := plan.Bind(engine.Config{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	svc := httptest.NewServer(newHandler(runner))
	t.Cleanup(func() {
		svc.Close()
		runner.Close(context.Background())
	})
	return svc, runner
}

func post(t *testing.T, url, body string) (int, response) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func TestLead(t *testing.T) {
	p, sent := partner(t)
	svc, _ := service(t, p.URL)
	for _, c := range []struct {
		body    string
		code    int
		outcome engine.Outcome
		class   engine.Class
		score   any
	}{
		{`{"email": "ann@example.com", "age": 41}`, 200, engine.Success, "", 12.0},
		{`{"email": "fraud@example.com", "age": 30}`, 200, engine.Failure, engine.ClassRejected, 97.0},
		{`{"age": 30}`, 200, engine.Skip, "", nil},
		{`{"email": `, 400, engine.Error, engine.ClassInput, nil},
	} {
		code, out := post(t, svc.URL+"/leads", c.body)
		if code != c.code || out.Outcome != c.outcome || out.Class != c.class || out.Lead["risk_score"] != c.score {
			t.Fatalf("%s: %d %+v", c.body, code, out)
		}
	}
	// the lead's numbers (decoded as json.Number) are sent as numbers
	if got := sent(); len(got) != 2 || got[0] != `{"email":"ann@example.com","age":41}` {
		t.Fatalf("partner got %q", got)
	}
}

func TestLeadPartnerDown(t *testing.T) {
	p, _ := partner(t)
	url := p.URL
	p.Close()
	svc, _ := service(t, url)
	code, out := post(t, svc.URL+"/leads", `{"email": "ann@example.com"}`)
	if code != http.StatusBadGateway || out.Outcome != engine.Error || out.Class != engine.ClassConnection {
		t.Fatalf("%d %+v", code, out)
	}
	if strings.Contains(out.Reason, "test-key") {
		t.Fatalf("the reason holds the API key: %q", out.Reason)
	}
}

func TestConcurrentLeadsShareTheRunner(t *testing.T) {
	p, sent := partner(t)
	svc, _ := service(t, p.URL)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := post(t, svc.URL+"/leads", fmt.Sprintf(`{"email": "l%d@example.com", "age": %d}`, i, 20+i))
			if code != 200 || out.Outcome != engine.Success {
				t.Errorf("lead %d: %d %+v", i, code, out)
			}
		}()
	}
	wg.Wait()
	if n := len(sent()); n != 20 {
		t.Fatalf("partner got %d requests", n)
	}
}

func TestBatch(t *testing.T) {
	p, sent := partner(t)
	svc, _ := service(t, p.URL)
	in := `{"email": "ann@example.com"}
{"email": "fraud@example.com"}
not json
{"email": "bob@example.com", "age": 12345678901234567890}
`
	resp, err := http.Post(svc.URL+"/leads/batch", "application/x-ndjson", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var got []string
	for dec.More() {
		var out response
		if err := dec.Decode(&out); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(out.Outcome, " ", out.Class, " ", out.Lead["email"]))
	}
	want := []string{"success  ann@example.com", "failure rejected fraud@example.com", "error input <nil>", "success  bob@example.com"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if bodies := sent(); !slices.Contains(bodies, `{"email":"bob@example.com","age":12345678901234567890}`) {
		t.Fatalf("the big number was not sent exactly: %q", bodies)
	}
}

// TestShutdownLeavesNothingRunning: once the server is closed and the
// runner with it, no goroutine of theirs is left.
func TestShutdownLeavesNothingRunning(t *testing.T) {
	p, _ := partner(t)
	ignore := goleak.IgnoreCurrent()
	env := map[string]string{"BLACKLIST_API_KEY": "test-key", "BLACKLIST_BASE_URL": p.URL}
	plan, err := engine.Load("blacklist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runner, err := plan.Bind(engine.Config{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	svc := httptest.NewServer(newHandler(runner))
	for range 3 {
		if code, out := post(t, svc.URL+"/leads", `{"email": "ann@example.com"}`); code != 200 || out.Outcome != engine.Success {
			t.Fatalf("%d %+v", code, out)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	svc.Close()
	runner.Close(context.Background())
	goleak.VerifyNone(t, ignore)
}
