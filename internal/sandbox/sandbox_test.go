package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRejectsBadRequests checks the sandbox answers 4xx when a request is
// not what a careful partner would accept, so the examples cannot pass by
// sending something sloppy.
func TestRejectsBadRequests(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	const (
		js   = "application/json"
		form = "application/x-www-form-urlencoded"
		xml  = "text/xml"
	)
	okEnvelope := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><a:Credentials xmlns:a="http://partner.com/auth"><a:Username>demo-user</a:Username><a:Password>demo-pass</a:Password></a:Credentials></soap:Header><soap:Body><l:ValidateRequest xmlns:l="http://partner.com/leads"><l:Email>a@mail.example</l:Email><l:Phone>5125550142</l:Phone><l:PostalCode>78701</l:PostalCode></l:ValidateRequest></soap:Body></soap:Envelope>`
	for _, tc := range []struct {
		name, method, path, ctype, body string
		headers                         map[string]string
		status                          int
		contains                        string
	}{
		{"blacklist ok", "POST", "/blacklist/check", js, `{"email":"a@mail.example"}`, map[string]string{"X-API-Key": APIKey}, 200, `"is_blacklisted":false`},
		{"blacklist blocked", "POST", "/blacklist/check", js, `{"email":"a@blocked.example"}`, map[string]string{"X-API-Key": APIKey}, 200, `"is_blacklisted":true`},
		{"blacklist no key", "POST", "/blacklist/check", js, `{"email":"a@mail.example"}`, nil, 401, "X-API-Key"},
		{"blacklist wrong type", "POST", "/blacklist/check", "text/plain", `{"email":"a@mail.example"}`, map[string]string{"X-API-Key": APIKey}, 415, ""},
		{"blacklist no email", "POST", "/blacklist/check", js, `{"phone":"5125550142"}`, map[string]string{"X-API-Key": APIKey}, 400, "email is required"},
		{"blacklist unknown field", "POST", "/blacklist/check", js, `{"email":"a@mail.example","x":1}`, map[string]string{"X-API-Key": APIKey}, 400, "unknown field"},
		{"blacklist dirty phone", "POST", "/blacklist/check", js, `{"email":"a@mail.example","phone":"(512) 555"}`, map[string]string{"X-API-Key": APIKey}, 400, "digits"},
		{"locate ok", "GET", "/v2/leads/CA/validate?source=1&type=auto&test=false", "", "", nil, 200, `"region":"regional"`},
		{"locate unknown state", "GET", "/v2/leads/ZZ/validate?source=1&type=auto&test=false", "", "", nil, 404, "unknown state"},
		{"locate missing query", "GET", "/v2/leads/CA/validate?source=1", "", "", nil, 400, "type is required"},
		{"tier no key", "POST", "/premium/validate", js, `{"email":"a@mail.example","state":"CA"}`, nil, 401, ""},
		{"partner no auth", "POST", "/partner/leads", js, `{}`, nil, 401, ""},
		{"partner missing fields", "POST", "/partner/leads", js, `{"lead":{}}`, map[string]string{"Authorization": "Basic ZGVtby11c2VyOmRlbW8tcGFzcw=="}, 422, "lead.personal.firstName"},
		{"partner verified not bool", "POST", "/partner/leads", js, `{"lead":{"contact":{"emails":[{"verified":"true"}]}}}`, map[string]string{"Authorization": "Basic ZGVtby11c2VyOmRlbW8tcGFzcw=="}, 400, "invalid JSON"},
		{"soap ok", "POST", "/soap/leads", xml, okEnvelope, map[string]string{"SOAPAction": `"` + SOAPAction + `"`}, 200, "<v:Status>Success</v:Status>"},
		{"soap no action", "POST", "/soap/leads", xml, okEnvelope, nil, 400, "SOAPAction"},
		{"soap bad creds", "POST", "/soap/leads", xml, strings.Replace(okEnvelope, "demo-pass", "nope", 1), map[string]string{"SOAPAction": SOAPAction}, 401, "authentication failed"},
		{"soap not xml", "POST", "/soap/leads", xml, "<soap:Envelope", map[string]string{"SOAPAction": SOAPAction}, 400, "malformed envelope"},
		{"text ok", "POST", "/text/validate?api_key=demo-key", form, "email=a%40mail.example&phone=5125550142", nil, 200, "SUCCESS|"},
		{"text no key", "POST", "/text/validate", form, "email=a%40mail.example&phone=5125550142", nil, 401, "BAD_API_KEY"},
		{"text json body", "POST", "/text/validate?api_key=demo-key", js, `{}`, nil, 415, "FORM_EXPECTED"},
		{"regex ok", "POST", "/regex/submit", form, "email=a%40mail.example&state=TX&age=30", map[string]string{"X-API-Key": APIKey}, 200, "Lead accepted with ID: "},
		{"regex no age", "POST", "/regex/submit", form, "email=a%40mail.example&state=TX", map[string]string{"X-API-Key": APIKey}, 400, ""},
		{"token ok", "POST", "/auth/token", form, "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret", nil, 200, Token()},
		{"token bad secret", "POST", "/auth/token", form, "grant_type=client_credentials&client_id=demo-client&client_secret=x", nil, 401, "invalid_client"},
		{"token bad grant", "POST", "/auth/token", form, "grant_type=password", nil, 400, "unsupported_grant_type"},
		{"validate ok", "POST", "/validate", js, `{"email":"a@verify.example"}`, map[string]string{"Authorization": "Bearer " + Token()}, 200, `"needs_verification":true`},
		{"validate no token", "POST", "/validate", js, `{"email":"a@mail.example"}`, nil, 401, ""},
		{"validate wrong token", "POST", "/validate", js, `{"email":"a@mail.example"}`, map[string]string{"Authorization": "Bearer tok-x"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body lacks %q: %s", tc.contains, body)
			}
		})
	}
}
