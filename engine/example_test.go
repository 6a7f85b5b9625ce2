package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/observe"
)

// blacklistPartner stands for a partner API: it checks the API key and
// answers whether an email is blacklisted.
func blacklistPartner() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "demo-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var in struct{ Email string }
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(in.Email, "fraud") {
			io.WriteString(w, `{"is_blacklisted": true, "risk_score": 97}`)
			return
		}
		io.WriteString(w, `{"is_blacklisted": false, "risk_score": 12}`)
	}))
}

const blacklistYAML = `
version: 1
name: internal-blacklist
settings:
  api_key:  { required: true, secret: true, env: BLACKLIST_API_KEY }
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
      reason: "blacklisted (score {{captured.score}})"
    append:
      risk_score: "{{captured.score}}"
`

// Load (or Parse) an integration once, Bind it to its settings to get a
// Runner, and run leads with it. The Runner owns the settings and their
// secrets, the token caches, the batches, the answer store and the HTTP
// transport: make one per integration and settings, share it between
// goroutines, and Close it when done.
func Example() {
	partner := blacklistPartner() // a partner API, here a local test server
	defer partner.Close()

	// engine.Load("blacklist.yaml") reads the same from a file
	plan, err := engine.Parse("blacklist.yaml", []byte(blacklistYAML))
	if err != nil {
		fmt.Println(err) // every problem of the file, positioned
		return
	}
	runner, err := plan.Bind(engine.Config{
		Values:    map[string]any{"base_url": partner.URL},
		LookupEnv: func(name string) (string, bool) { return "demo-key", name == "BLACKLIST_API_KEY" }, // os.LookupEnv
	})
	if err != nil {
		fmt.Println(err) // missing or invalid settings, all at once
		return
	}
	defer runner.Close(context.Background())

	res := runner.Run(context.Background(), map[string]any{"email": "ann@example.com", "phone": "(512) 555-0100"})
	fmt.Println(res.Outcome, res.Steps[0].Status, res.Lead["risk_score"])

	res = runner.Run(context.Background(), map[string]any{"email": "fraud@example.com", "phone": "1"})
	fmt.Println(res.Outcome, res.Class, res.Reason)
	// Output:
	// success 200 12
	// failure rejected blacklisted (score 97)
}

// RunAll runs many leads, Concurrency at a time, and gives their results
// back in input order. A lead the input could not read (here a malformed
// line) gets an error result of class input in its place.
func ExampleRunner_RunAll() {
	partner := blacklistPartner()
	defer partner.Close()
	plan, err := engine.Parse("blacklist.yaml", []byte(blacklistYAML))
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": partner.URL, "api_key": "demo-key"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())

	ndjson := `{"email": "ann@example.com", "phone": "512 555 0100"}
{"email": "fraud@example.com", "phone": "512 555 0199"}
{"email": 
{"email": "bob@example.com", "phone": "512 555 0142"}`
	leads := func(yield func(map[string]any, error) bool) {
		for line := range strings.Lines(ndjson) {
			var lead map[string]any
			err := json.Unmarshal([]byte(line), &lead)
			if !yield(lead, err) {
				return
			}
		}
	}
	for i, res := range runner.RunAll(context.Background(), leads, engine.RunAllOptions{Concurrency: 8}) {
		fmt.Println(i, res.Outcome, res.Class, res.Lead["email"])
	}
	// Output:
	// 0 success  ann@example.com
	// 1 failure rejected fraud@example.com
	// 2 error input <nil>
	// 3 success  bob@example.com
}

// WithEvents with an observer (engine/observe) sees every HTTP try, with
// secret setting values masked: for logs, debugging tools and tests.
func ExampleWithEvents() {
	partner := blacklistPartner()
	defer partner.Close()
	watch := engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) {
		fmt.Println(ex.Step, ex.Attempt, ex.Method, strings.TrimPrefix(ex.URL, partner.URL), ex.RequestHeader.Get("X-API-Key"), ex.Status)
		fmt.Println(ex.RequestBody)
		fmt.Println(ex.ResponseBody)
	}))
	plan, err := engine.Parse("blacklist.yaml", []byte(blacklistYAML), watch)
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": partner.URL, "api_key": "demo-key"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())
	runner.Run(context.Background(), map[string]any{"email": "ann@example.com", "phone": "512 555 0100"})
	// Output:
	// check 1 POST /blacklist/check **** 200
	// {"email":"ann@example.com","phone":"5125550100"}
	// {"is_blacklisted": false, "risk_score": 12}
}

// logRequests is a RoundTripper that logs each request before passing it
// on, as tracing or metrics middleware would.
type logRequests struct{ next http.RoundTripper }

func (l logRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	fmt.Println("->", req.Method, req.URL.Path)
	return l.next.RoundTrip(req)
}

// WithTransport wraps the transport each Runner builds (pooled, tuned by
// the file's http: section, redirect-checked) with middleware such as
// tracing or metrics.
func ExampleWithTransport() {
	partner := blacklistPartner()
	defer partner.Close()
	plan, err := engine.Parse("blacklist.yaml", []byte(blacklistYAML),
		engine.WithTransport(func(rt http.RoundTripper) http.RoundTripper { return logRequests{next: rt} }))
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": partner.URL, "api_key": "demo-key"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())
	res := runner.Run(context.Background(), map[string]any{"email": "ann@example.com", "phone": "512 555 0100"})
	fmt.Println(res.Outcome)
	// Output:
	// -> POST /blacklist/check
	// success
}

// WithFuncs adds template functions, checked at load like the built-in
// ones.
func ExampleWithFuncs() {
	src := `
version: 1
name: crm
steps:
  - name: upsert
    request:
      url: "https://crm.example.com/contacts"
      body:
        json: { name: "{{ lead.name | monogram }}" }
`
	monogram := func(s string) string {
		var b strings.Builder
		for w := range strings.FieldsSeq(s) {
			b.WriteString(strings.ToUpper(w[:1]) + ".")
		}
		return b.String()
	}
	plan, err := engine.Parse("crm.yaml", []byte(src), engine.WithFuncs(map[string]any{"monogram": monogram}))
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())
	fmt.Println(runner.DryRun(map[string]any{"name": "ada king lovelace"})[0].Body)

	// without the function, the file does not load
	_, err = engine.Parse("crm.yaml", []byte(src))
	fmt.Println(err != nil)
	// Output:
	// {"name":"A.K.L."}
	// true
}

// acmeSigner signs a request the way the (imaginary) Acme API wants.
type acmeSigner struct{ key string }

func (a acmeSigner) Apply(_ context.Context, req *http.Request, body []byte) error {
	req.Header.Set("Authorization", fmt.Sprintf("ACME key=%s, length=%d", a.key, len(body)))
	return nil
}

// WithAuthScheme adds an auth scheme beside the built-in ones; auth
// sections name it by its type (custom names start with x-). Its
// constructor gets the section rendered from the runner's settings, once
// per Bind.
func ExampleWithAuthScheme() {
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("partner got:", r.Header.Get("Authorization"))
	}))
	defer partner.Close()
	src := `
version: 1
name: acme
settings:
  base_url: {}
  acme_key: { secret: true, required: true }
auth: { type: x-acme, token: "{{settings.acme_key}}" }
steps:
  - name: send
    request: { url: "{{settings.base_url}}/leads", body: { json: { id: "{{lead.id}}" } } }
`
	acme := engine.WithAuthScheme("x-acme", func(cfg auth.Config) (auth.Authenticator, error) {
		if cfg.Token == "" {
			return nil, errors.New("x-acme needs a token")
		}
		return acmeSigner{key: cfg.Token}, nil
	})
	plan, err := engine.Parse("acme.yaml", []byte(src), acme)
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{Values: map[string]any{"base_url": partner.URL, "acme_key": "k-42"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())
	fmt.Println(runner.Run(context.Background(), map[string]any{"id": 7}).Outcome)

	// an auth type nobody registered is a load error
	_, err = engine.Parse("acme.yaml", []byte(src))
	fmt.Println(err)
	// Output:
	// partner got: ACME key=k-42, length=8
	// success
	// acme.yaml:7:7: auth: no scheme "x-acme" is registered (custom schemes are registered with engine.WithAuthScheme)
}

// DryRun shows the requests a lead would make, secrets masked, without
// sending anything.
func ExampleRunner_DryRun() {
	plan, err := engine.Parse("blacklist.yaml", []byte(blacklistYAML))
	if err != nil {
		fmt.Println(err)
		return
	}
	runner, err := plan.Bind(engine.Config{Values: map[string]any{"api_key": "demo-key"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(context.Background())
	for _, r := range runner.DryRun(map[string]any{"email": "ann@example.com", "phone": "+1 (512) 555-0100"}) {
		fmt.Println(r.Step, r.Method, r.URL)
		fmt.Println("X-API-Key:", r.Header.Get("X-API-Key"))
		fmt.Println(r.Body)
	}
	// Output:
	// check POST https://api.internal.com/blacklist/check
	// X-API-Key: ****
	// {"email":"ann@example.com","phone":"15125550100"}
}

// DecodeLead reads a lead from JSON as plumb's own readers do: one object,
// numbers exact, nothing after it.
func ExampleDecodeLead() {
	lead, err := engine.DecodeLead([]byte(`{"email": "ann@example.com", "id": 12345678901234567890}`))
	fmt.Println(lead["id"], err)
	for _, bad := range []string{`[1, 2]`, `{"a": 1} }`, `{"a": `} {
		_, err := engine.DecodeLead([]byte(bad))
		fmt.Println(err)
	}
	// Output:
	// 12345678901234567890 <nil>
	// a lead must be a JSON object, got an array
	// more than one JSON value: "}" after the object
	// invalid JSON: unexpected EOF
}

// Normalize shows a lead as templates and conditions see it: Run and
// RunAll normalise every lead this way, so a lead may come from a struct
// or a decoder using UseNumber. Numbers are float64, except integers too
// big for one, which stay exact.
func ExampleNormalize() {
	type Contact struct {
		Email  string   `json:"email"`
		Age    int      `json:"age"`
		ID     uint64   `json:"id"`
		Tags   []string `json:"tags"`
		Secret string   `json:"-"`
	}
	lead, err := engine.Normalize(Contact{Email: "ann@example.com", Age: 41, ID: 12345678901234567890, Tags: []string{"vip"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%T %v\n", lead["age"], lead["age"])
	fmt.Printf("%T %v\n", lead["id"], lead["id"])
	fmt.Printf("%T %v\n", lead["tags"], lead["tags"])

	decoded, _ := engine.DecodeLead([]byte(`{"age": 41, "score": 0.5}`))
	lead, _ = engine.Normalize(decoded)
	fmt.Printf("%T %v, %T %v\n", lead["age"], lead["age"], lead["score"], lead["score"])
	// Output:
	// float64 41
	// json.Number 12345678901234567890
	// []interface {} [vip]
	// float64 41, float64 0.5
}

// A Redactor masks secrets in a decoded JSON document string by string and
// key by key, so the document stays valid whatever the secrets hold (text
// masking of its serialised form could cut an escape such as \n in two).
// Two keys that mask alike are told apart.
func ExampleRedactor_Value() {
	red := engine.NewRedactor("nB7kQ2-service-secret", "1234")
	var doc any
	json.Unmarshal([]byte(`{"note": "line1\nB7kQ2-service-secret", "pin": "1234", "port": "12345",
		"B7kQ2-service-secret": 1, "****": 2, "list": ["service-secret", "ok"]}`), &doc)
	out, _ := json.Marshal(red.Value(doc))
	fmt.Println(string(out))
	// Output:
	// {"****":2,"**** #2":1,"list":["****","ok"],"note":"line1\n****","pin":"****","port":"12345"}
}
