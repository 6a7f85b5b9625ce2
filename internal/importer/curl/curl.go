package curl

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// Options configure an import.
type Options struct {
	// Name is the integration's name (default: from the method and path).
	Name string
	// ReadFile reads a file the line names (-d @body.json); nil refuses
	// such lines.
	ReadFile func(name string) ([]byte, error)
}

// command is what a curl line asks for.
type command struct {
	method         string
	urls           []string
	headers        []importer.KV
	data           []string // -d parts, joined with &
	json           []string // --json parts, concatenated
	form           []importer.KV
	get, head      bool
	user           *string
	bearer         string
	timeout        string
	retries        int
	notes          []string
	explicitCT     bool
	explicitAccept bool
	readFile       func(string) ([]byte, error)
}

// Import reads a curl command line and returns the draft integration it
// describes.
func Import(line string, opts Options) (*importer.Integration, error) {
	args, vars, err := words(line)
	if err != nil {
		return nil, err
	}
	c := &command{readFile: opts.ReadFile}
	if err := c.parse(args); err != nil {
		return nil, err
	}
	r, err := c.recorded()
	if err != nil {
		return nil, err
	}
	in := &importer.Integration{}
	in.Name = opts.Name
	if in.Name == "" {
		in.Name = defaultName(r)
	}
	in.Description = "Imported from a curl line: " + r.Method + " " + safeURL(r.URL)
	in.Header = []string{
		"Imported by `plumb import curl` from a curl line. Check it: plumb validate FILE; plumb test FILE",
		"Credentials found in the line are not copied: they are secret settings (give them in a",
		"settings file, with --set, or in the environment variable each one names).",
	}
	r.Name = importer.Snake(defaultName(r))
	b := importer.NewBuilder(in, vars)
	step, err := b.Step(r)
	if err != nil {
		return nil, err
	}
	in.Steps = append(in.Steps, step)
	in.Tests = append(in.Tests, b.Case("sends the request of the curl line", "TODO(import): record a real answer of the partner under responses and what must come of it under expect"))
	return in, nil
}

func defaultName(r *importer.Recorded) string {
	u, err := url.Parse(importer.Render(r.URL, func(string) string { return "" }))
	parts := []string{strings.ToLower(r.Method)}
	if err == nil {
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		for i := len(segs) - 1; i >= 0 && len(parts) < 3; i-- {
			if s := segs[i]; s != "" && !strings.ContainsAny(s, "0123456789") {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) == 1 {
		parts = append(parts, "request")
	}
	if len(parts) == 3 {
		parts[1], parts[2] = parts[2], parts[1]
	}
	return importer.Kebab(strings.Join(parts, " "))
}

// safeURL is the URL without credentials or query (for the description).
func safeURL(raw string) string {
	raw = importer.Render(raw, func(n string) string { return "$" + n })
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = nil
		raw = u.String()
	}
	return raw
}

// recorded turns the parsed command into the request it sends.
func (c *command) recorded() (*importer.Recorded, error) {
	if len(c.urls) == 0 {
		return nil, importer.Errorf("add the URL: curl https://api.example.com/leads …", "the curl line has no URL")
	}
	if len(c.urls) > 1 {
		return nil, importer.Errorf("import one request at a time", "the curl line has %d URLs", len(c.urls))
	}
	r := &importer.Recorded{Headers: c.headers, Timeout: c.timeout, Notes: c.notes}
	raw := c.urls[0]
	if !strings.Contains(raw, "://") && !importer.StartsWithRef(raw) {
		raw = "http://" + raw // what curl assumes
		r.Notes = append(r.Notes, "TODO(import): the line's URL has no scheme; curl (and this file) use http://")
	}
	raw, userinfo := importer.CutUserinfo(raw)
	if userinfo != nil && c.user == nil {
		c.user = userinfo
	}
	body := strings.Join(c.data, "&")
	if len(c.json) > 0 {
		body = strings.Join(c.json, "")
		if !c.explicitCT {
			r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/json"})
		}
		if !c.explicitAccept {
			r.Headers = append(r.Headers, importer.KV{Key: "Accept", Value: "application/json"})
		}
	}
	if c.get && body != "" {
		sep := "?"
		if strings.Contains(raw, "?") {
			sep = "&"
		}
		raw, body = raw+sep+body, ""
	}
	r.URL = raw
	r.Body = body
	if len(c.form) > 0 {
		r.Form, r.Multipart = c.form, true
	}
	if body != "" && !c.explicitCT && len(c.json) == 0 {
		if looksJSON(body) {
			r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/json"})
			r.Notes = append(r.Notes, "TODO(import): the line sends JSON without a Content-Type header (curl then says application/x-www-form-urlencoded); this file sends application/json")
		} else {
			r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/x-www-form-urlencoded"})
		}
	}
	r.Method = c.methodFor(r)
	switch r.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
	default:
		return nil, importer.Errorf("plumb sends GET, POST, PUT, PATCH, DELETE, HEAD and OPTIONS", "-X %s is not a method plumb sends", r.Method)
	}
	c.credentials(r)
	if c.retries > 0 {
		r.Retry = importer.FlowMap("on", flowList(408, 429, 500, 502, 503, 504, "timeout"), "action", "retry", "max_attempts", c.retries+1)
		r.Tries = map[int]int{408: c.retries + 1, 429: c.retries + 1, 500: c.retries + 1, 502: c.retries + 1, 503: c.retries + 1, 504: c.retries + 1}
	}
	return r, nil
}

func (c *command) methodFor(r *importer.Recorded) string {
	switch {
	case c.method != "":
		return strings.ToUpper(c.method)
	case c.head:
		return "HEAD"
	case r.Body != "" || len(r.Form) > 0:
		return "POST"
	}
	return "GET"
}

// credentials maps -u and --oauth2-bearer onto the request's auth.
func (c *command) credentials(r *importer.Recorded) {
	if c.bearer != "" {
		r.Auth = &importer.Auth{Type: "bearer", Token: c.bearer}
	}
	if c.user != nil {
		user, pass, ok := strings.Cut(*c.user, ":")
		r.Auth = &importer.Auth{Type: "basic", Username: user, Password: pass, AskPassword: !ok}
		if !ok {
			r.Notes = append(r.Notes, "TODO(import): -u gives no password (curl would ask for it): set the password setting")
		}
	}
}

func looksJSON(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")
}

func flowList(items ...any) *importer.List {
	l := &importer.List{Flow: true}
	for _, x := range items {
		l.Add(x)
	}
	return l
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return n
	}
	return def
}
