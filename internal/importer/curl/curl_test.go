package curl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plumbhq/plumb/internal/importer"
	"github.com/plumbhq/plumb/internal/importer/importtest"
)

// lines are one curl line per flag family: each imports into a file plumb
// loads whose generated case passes, with what the line says and without
// the line's literal secrets.
var lines = []struct {
	name, line  string
	want, lacks []string
}{
	{"json body and bearer", `curl -X POST https://api.partner.example/v1/leads \
  -H "Authorization: Bearer sk_live_abc123" \
  -H 'Content-Type: application/json' \
  -d '{"email":"jane@example.com","age":41,"vip":true,"address":{"city":"Austin"},"tags":["a","b"],"password":"hunter2"}'`,
		[]string{`auth: { type: bearer, token: "{{settings.token}}" }`, `email: "{{lead.email}}"`, `age: "{{lead.age}}"`,
			`address: { city: "{{lead.address.city}}" }`, `tags: "{{lead.tags}}"`, `password: "{{settings.password}}"`,
			"lead: { email: jane@example.com, age: 41, vip: true, address: { city: Austin }, tags: [a, b] }",
			"token: { required: true, secret: true, env: POST_LEADS_TOKEN }", "Authorization: Bearer test-token"},
		[]string{"sk_live_abc123", "hunter2"}},
	{"get with urlencoded data", `curl -G https://api.partner.example/search --data-urlencode 'q=jane doe' -d limit=5 -H 'X-Api-Key: k-9f8e7d'`,
		[]string{"method: GET", "q: jane doe", `limit: "5"`, `auth: { type: api_key, in: header, name: X-Api-Key, value: "{{settings.api_key}}" }`,
			"query: { q: jane doe, limit: \"5\" }"},
		[]string{"k-9f8e7d"}},
	{"form body and basic auth", `curl https://api.partner.example/leads -u acme:s3cret -d email=jane%40example.com -d first=Jane`,
		[]string{"form:", `email: "{{lead.email}}"`, `first: "{{lead.first}}"`, `auth: { type: basic, username: "{{settings.username}}", password: "{{settings.password}}" }`,
			`username: { default: acme }`, "form: { email: jane@example.com, first: Jane }", "method: POST"},
		[]string{"s3cret"}},
	{"--json", `curl --json '{"name":"x"}' https://api.partner.example/things`,
		[]string{"json:", `name: "{{lead.name}}"`, "Accept: application/json", "method: POST"}, nil},
	{"multipart -F", `curl -F name=Jane -F 'note=hello world;type=text/plain' https://api.partner.example/upload`,
		[]string{"form:", "TODO(import): the request was multipart/form-data", `note: "{{lead.note}}"`, "note: hello world"}, nil},
	{"agent, referer, cookie", `curl -A 'acme-bot/1.0' -e https://partner.example/ref -b 'session=abc.def' https://api.partner.example/x`,
		[]string{"User-Agent: acme-bot/1.0", `Referer: "https://partner.example/ref"`, `Cookie: "{{settings.cookie}}"`, "a recorded session cookie expires"},
		[]string{"abc.def"}},
	{"key in the query", `curl 'https://api.partner.example/v2/check?email=a%40b.example&api_key=QQQ123&format=json'`,
		[]string{`auth: { type: api_key, in: query, name: api_key, value: "{{settings.api_key}}" }`, "email: a@b.example", "TODO(import): query values are copied",
			"query: { email: a@b.example, api_key: test-api-key, format: json }"},
		[]string{"QQQ123"}},
	{"environment variables", `curl -H "Authorization: Bearer $PARTNER_TOKEN" -H "X-Account: ${ACCOUNT_ID}" "$BASE_URL/v1/leads"`,
		[]string{`token: "{{settings.partner_token}}"`, "partner_token: { required: true, secret: true, env: PARTNER_TOKEN }",
			"account_id: { required: true, env: ACCOUNT_ID }", `X-Account: "{{settings.account_id}}"`, `url: "{{settings.base_url}}/v1/leads"`}, nil},
	{"copied from a page", "$ curl -X PUT https://api.partner.example/v1/leads/42 \\  \n   -H 'Accept: application/json'   \\\t\n   --compressed -sS -L -k --max-time 5 --retry 3",
		[]string{"method: PUT", "timeout: 5s", "max_attempts: 4", "skips TLS verification", "Accept: application/json", "path: /v1/leads/42",
			"TODO(import): the path is copied as recorded"}, nil},
	{"key as the user", `curl https://api.stripe.example/v1/charges -u sk_test_4eC39HqLyjWDarjtT1zdp7dc: -d amount=2000`,
		[]string{`username: "{{settings.username}}"`, "username: { required: true, secret: true"}, []string{"sk_test_4eC39HqLyjWDarjtT1zdp7dc"}},
	{"credentials in the URL", `curl https://bob:pa55@api.partner.example/v1/me`,
		[]string{"type: basic", "username: { default: bob }", `base_url: { default: "https://api.partner.example" }`}, []string{"pa55"}},
	{"combined short options", `curl -sSLXPATCH https://api.partner.example/v1/leads/7 -HContent-Type:application/json -d'{"status":"won"}'`,
		[]string{"method: PATCH", `status: "{{lead.status}}"`}, nil},
	{"head and oauth2 bearer", `curl -I --oauth2-bearer tok_live_77 https://api.partner.example/health`,
		[]string{"method: HEAD", `auth: { type: bearer, token: "{{settings.token}}" }`}, []string{"tok_live_77"}},
	{"token scheme", `curl -H 'Authorization: Token abcdef123' https://api.partner.example/v1/me`,
		[]string{`value: "Token {{settings.authorization}}"`, "Authorization: Token test-authorization"}, []string{"abcdef123"}},
	{"json without content type", `curl https://api.partner.example/v1/leads -d '{"email":"x@y.example"}'`,
		[]string{"TODO(import): the line sends JSON without a Content-Type header", `email: "{{lead.email}}"`}, nil},
	{"no scheme", `curl api.partner.example/ping`, []string{`base_url: { default: "http://api.partner.example" }`, "has no scheme"}, nil},
	{"template text is escaped", `curl https://api.partner.example/x -H 'X-Tpl: {{not a template}}' --data-raw 'hello {{name}}' -H 'Content-Type: text/plain'`,
		[]string{`X-Tpl: "{{\"{{\"}}not a template}}"`, "text:"}, nil},
}

func TestCurlLines(t *testing.T) {
	for _, c := range lines {
		t.Run(c.name, func(t *testing.T) {
			in, err := Import(c.line, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := string(in.YAML())
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, s := range c.lacks {
				if strings.Contains(out, s) {
					t.Errorf("the secret %q was copied:\n%s", s, out)
				}
			}
			if _, n := importtest.RoundTrip(t, in); n != 1 {
				t.Errorf("want 1 generated case, got %d", n)
			}
		})
	}
}

// -d @FILE reads the file through Options.ReadFile; without one the line
// is refused with a hint.
func TestDataFromFile(t *testing.T) {
	dir := t.TempDir()
	body := filepath.Join(dir, "lead.json")
	os.WriteFile(body, []byte("{\"email\": \"f@example.com\",\n \"zip\": \"78701\"}\n"), 0o644)
	in, err := Import(`curl -H 'Content-Type: application/json' --data-binary @`+body+` https://api.partner.example/leads`, Options{ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	if out := string(in.YAML()); !strings.Contains(out, `zip: "{{lead.zip}}"`) || !strings.Contains(out, "zip: \"78701\"") {
		t.Errorf("the file's fields are not lead fields:\n%s", out)
	}
	importtest.RoundTrip(t, in)
	if _, err := Import(`curl -d @`+body+` https://x.example`, Options{}); err == nil || !strings.Contains(err.Error(), "paste the file's content") {
		t.Errorf("without a reader: got %v", err)
	}
}

// Malformed lines are one error line with a hint, never a panic.
func TestBadLines(t *testing.T) {
	cases := []struct{ line, want string }{
		{`curl -X POST`, "the curl line has no URL"},
		{`curl 'https://x.example`, "cannot be read as a shell command"},
		{`curl --frobnicate https://x.example`, "unknown curl option --frobnicate"},
		{`curl -j https://x.example`, "unknown curl option -j"},
		{`curl -F file=@lead.csv https://x.example`, "uploads a file"},
		{`curl -H "Authorization: Bearer $(gcloud auth print-access-token)" https://x.example`, "runs a command"},
		{`curl -T lead.json https://x.example`, "does not upload files"},
		{`curl https://a.example https://b.example`, "has 2 URLs"},
		{`curl -H 'no colon here' https://x.example`, "is not a header"},
		{`curl -H 'Authorization Bearer sk_live_zz' https://x.example`, `-H "Authorizatio"… is not a header (no colon)`},
		{`curl 'ftp://u:pw_secret@x.example/f?api_key=k_secret'`, `URL "ftp://x.example/f" is not absolute`},
		{`curl https://x.example -H`, "needs a value"},
		{`ls -la`, "no curl command found"},
		{`curl --digest -u a:b https://x.example`, "digest"},
		{`curl https://$HOST.example/x`, "holds a variable"},
		{"curl https://x.example -d '\uE000'", "private-use"},
		{`curl ftp://x.example/file`, "is not absolute"},
	}
	for _, c := range cases {
		in, err := Import(c.line, Options{})
		var ie *importer.Error
		if in != nil || !errors.As(err, &ie) {
			t.Errorf("%s: want an import error, got %v", c.line, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || ie.Hint == "" {
			t.Errorf("%s: want one line with %q and a hint, got %q", c.line, c.want, err)
		}
		for _, secret := range []string{"sk_live_zz", "pw_secret", "k_secret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows the secret %s: %q", c.line, secret, err)
			}
		}
	}
}
