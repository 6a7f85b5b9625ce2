package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFlowEndpoints checks the endpoints of the parallel-validation and
// batch-validate examples refuse what a careful partner would.
func TestFlowEndpoints(t *testing.T) {
	sb := New()
	srv := httptest.NewServer(sb)
	defer srv.Close()
	key := map[string]string{"X-API-Key": APIKey}
	deliverOK := `{"email":"a@mail.example","phone":"5125550142","birth_date":"04/12/1988","age":%AGE%,"type":"B2C","company":"","checks":{"email_score":70,"phone_valid":true,"line_type":"mobile","risk_score":12}}`
	for _, tc := range []struct {
		name, path, body string
		headers          map[string]string
		status           int
		contains         string
	}{
		{"email ok", "/checks/email", `{"email":"a@mail.example"}`, key, 200, `"valid":true`},
		{"email invalid", "/checks/email", `{"email":"a@invalid.example"}`, key, 200, `"valid":false`},
		{"email no key", "/checks/email", `{"email":"a@mail.example"}`, nil, 401, ""},
		{"phone formatted", "/checks/phone", `{"phone":"(512) 555-0142"}`, key, 400, "digits only"},
		{"phone short", "/checks/phone", `{"phone":"5550100"}`, key, 200, `"valid":false`},
		{"blacklist listed", "/checks/blacklist", `{"email":"a@blocked.example","phone":"5125550142"}`, key, 200, `"listed":true`},
		{"deliver ok", "/leads/deliver", deliverOK, key, 201, `"status":"accepted"`},
		{"deliver age as text", "/leads/deliver", strings.Replace(deliverOK, `"age":%AGE%`, `"age":"38"`, 1), key, 400, "invalid JSON"},
		{"deliver wrong age", "/leads/deliver", strings.Replace(deliverOK, `%AGE%`, "20", 1), key, 422, "does not match"},
		{"deliver dob format", "/leads/deliver", strings.Replace(deliverOK, "04/12/1988", "1988-04-12", 1), key, 422, "MM/DD/YYYY"},
		{"deliver B2B without company", "/leads/deliver", strings.Replace(deliverOK, "B2C", "B2B", 1), key, 422, "company"},
		{"batch ok", "/validate-batch", `{"batch_id":"b1","leads":[{"id":"1","email":"a@mail.example"},{"id":"2","email":"b@missing.example"}]}`, key, 200, `"results":[{"id":"1"`},
		{"batch no id", "/validate-batch", `{"leads":[{"id":"1","email":"a@mail.example"}]}`, key, 400, "batch_id"},
		{"batch lead without email", "/validate-batch", `{"batch_id":"b1","leads":[{"id":"1"}]}`, key, 400, "leads[0]"},
		{"batch duplicate id", "/validate-batch", `{"batch_id":"b1","leads":[{"id":"1","email":"a@mail.example"},{"id":"1","email":"b@mail.example"}]}`, key, 400, "duplicate"},
		{"batch empty", "/validate-batch", `{"batch_id":"b1","leads":[]}`, key, 400, "1 to 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(tc.body, "%AGE%", strconv.Itoa(yearsSince(time.Date(1988, 4, 12, 0, 0, 0, 0, time.UTC), time.Now())), 1)
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
				t.Errorf("%d %s, want %d containing %q", resp.StatusCode, b, tc.status, tc.contains)
			}
			if tc.name == "batch ok" && strings.Contains(string(b), `"id":"2"`) {
				t.Errorf("a lead at %s got a result: %s", MissingDomain, b)
			}
		})
	}
	if got := sb.BatchSizes(); !slices.Equal(got, []int{2}) {
		t.Errorf("BatchSizes() = %v, want [2] (only accepted batches count)", got)
	}
}

func TestMaxInFlight(t *testing.T) {
	sb := New()
	srv := httptest.NewServer(sb)
	defer srv.Close()
	var wg sync.WaitGroup
	for _, p := range []string{"/checks/email", "/checks/phone", "/checks/blacklist"} {
		wg.Go(func() {
			body := `{"email":"a@mail.example"}`
			if p == "/checks/phone" {
				body = `{"phone":"5125550142"}`
			}
			req, _ := http.NewRequest("POST", srv.URL+p, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", APIKey)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if got := sb.MaxInFlight(); got != 3 {
		t.Errorf("MaxInFlight() = %d, want 3", got)
	}
}
