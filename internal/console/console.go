// Package console is the test console of `plumb serve --console`: a small
// web page at /console/ to pick an integration, edit a lead and setting
// overrides, run one step or the whole flow against the partner (or the
// sandbox), look at every try (rendered request, raw response, timings,
// captures, outcome), edit the integration's YAML with load errors shown at
// their line, and save an exchange as a test case that `plumb test` runs.
//
// The page is server-rendered HTML with a little vanilla JavaScript and CSS,
// embedded in the binary (no build step, no CDN: it works offline). Its
// JSON API lives under /console/api/. docs/console.md is the reference.
//
// Secrets: a secret setting's value never reaches the page. The settings
// list says only whether it is set; runs are reported through the engine's
// masking (Runner.Redact and masked exchanges) and every JSON answer is
// masked once more, by the engine's masker, of every secret value known for
// the integration.
//
// What the page sends is not trusted as the operator is (trust.go): files
// are read under Dir only (engine.WithRoot), and the service's stored
// secrets go only to the origins the saved file names (engine.Origins): a
// run reaching another origin is bound without them, a run holding them
// cannot send elsewhere, and saving new origins needs a logged
// confirmation.
//
// Access: serve mounts the console only when asked (--console). Without API
// tokens the server listens on loopback only and the console also checks
// that the Host header is a loopback name (no DNS rebinding); with tokens
// the page asks for one and keeps a session cookie (HttpOnly,
// SameSite=Strict). Every API call that changes something must carry the
// X-Plumb-Console header and a JSON body, which a cross-site form cannot.
package console

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/steps"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// maxBody bounds an API request body.
const maxBody = 4 << 20

// sessionTTL is how long a console login lasts.
const sessionTTL = 12 * time.Hour

//go:embed static
var static embed.FS

// Config configures the console.
type Config struct {
	// Dir holds the integration files.
	Dir string
	// Files lists the integration files of Dir (serve.Discover).
	Files func() ([]string, error)
	// SettingsFile names the settings file of an integration file
	// (serve.SettingsFile).
	SettingsFile func(string) string
	// SandboxURL, when set, is the base_url every integration declaring
	// one runs against (plumb serve --sandbox).
	SandboxURL string
	// LookupEnv reads the env variables settings name.
	LookupEnv func(string) (string, bool)
	// Tokens keeps OAuth2 tokens for the runs (optional).
	Tokens auth.TokenStore
	// RequireToken is set when the API has tokens: the page then asks for
	// one, checked with Authorize.
	RequireToken bool
	// Authorize checks a request's bearer token (serve's check).
	Authorize func(*http.Request) bool
	// Changed is called after an integration file was saved (serve
	// reloads its integrations).
	Changed func()
	// Logger receives the console's logs (default: discard).
	Logger *slog.Logger
	// API, when set, serves the service's API routes the operations page
	// reads (paths from /v1/), for a caller the console has let in: the
	// console passes /console/api/v1/… on to it (ops.go).
	API http.Handler
}

// Console is the console's HTTP handler.
type Console struct {
	cfg  Config
	log  *slog.Logger
	mux  *http.ServeMux
	page *template.Template

	mu       sync.Mutex
	sessions map[string]time.Time // session id → expiry
	runs     map[string]*runRecord
	runOrder []string
	fileMu   sync.Mutex // serialises writes to integration and test files
}

// New makes the console handler, to be mounted at Prefix.
func New(cfg Config) (*Console, error) {
	if cfg.Dir == "" || cfg.Files == nil || cfg.SettingsFile == nil {
		return nil, errors.New("console: Dir, Files and SettingsFile are required")
	}
	if cfg.RequireToken && cfg.Authorize == nil {
		return nil, errors.New("console: RequireToken needs Authorize")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	page, err := template.ParseFS(static, "static/index.html", "static/login.html")
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, page: page, sessions: map[string]time.Time{}, runs: map[string]*runRecord{}}
	m := http.NewServeMux()
	m.HandleFunc("GET /console/{$}", c.index)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.logout)
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix("/console/static/", http.FileServerFS(sub))
	m.Handle("GET /console/static/", files)
	m.HandleFunc("GET /console/api/integrations", c.api(c.listIntegrations))
	m.HandleFunc("GET /console/api/integration", c.api(c.getIntegration))
	m.HandleFunc("POST /console/api/validate", c.api(c.validate))
	m.HandleFunc("POST /console/api/run", c.api(c.run))
	m.HandleFunc("POST /console/api/save-yaml", c.api(c.saveYAML))
	m.HandleFunc("POST /console/api/save-case", c.api(c.saveCase))
	if err := c.mountOps(m); err != nil {
		return nil, err
	}
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no console route "+r.Method+" "+r.URL.Path)
	})
	c.mux = m
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if !c.cfg.RequireToken && !loopbackHost(r.Host) {
		// Without tokens the server only listens on loopback; a browser
		// reaching it under another name is a DNS-rebinding attempt.
		writeError(w, http.StatusForbidden, "the console without API tokens answers only to a loopback host name (localhost, 127.0.0.1, [::1])")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names the loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

const sessionCookie = "plumb_console"

// authorized reports whether r may use the console.
func (c *Console) authorized(r *http.Request) bool {
	if !c.cfg.RequireToken {
		return true
	}
	if r.Header.Get("Authorization") != "" && c.cfg.Authorize(r) {
		return true
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.sessions[ck.Value]
	if ok && time.Now().After(exp) {
		delete(c.sessions, ck.Value)
		ok = false
	}
	return ok
}

// login checks a token given in the login form and opens a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.RequireToken {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	probe := r.Clone(r.Context())
	probe.Header = http.Header{"Authorization": {"Bearer " + tok}}
	if tok == "" || !c.cfg.Authorize(probe) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		c.page.ExecuteTemplate(w, "login.html", map[string]any{"Error": "That token is not one of the console's tokens (--console-token-file or PLUMB_CONSOLE_TOKENS)."})
		return
	}
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	c.mu.Lock()
	now := time.Now()
	for k, exp := range c.sessions {
		if now.After(exp) {
			delete(c.sessions, k)
		}
	}
	c.sessions[id] = now.Add(sessionTTL)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// pageItem is one integration in the page's picker.
type pageItem struct {
	ID, Label string
	Failed    bool
}

// index serves the page: the picker is rendered here, the rest is filled
// in by console.js from the API.
func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !c.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		c.page.ExecuteTemplate(w, "login.html", nil)
		return
	}
	var items []pageItem
	list, err := c.integrations()
	for _, in := range list {
		label := in.Name
		if label == "" {
			label = in.ID
		}
		if in.Name != "" && !strings.HasPrefix(in.ID, in.Name+"/") && !strings.HasPrefix(in.ID, in.Name+".") {
			label = in.Name + " (" + in.ID + ")"
		}
		items = append(items, pageItem{ID: in.ID, Label: label, Failed: in.Error != ""})
	}
	data := map[string]any{"Items": items, "Sandbox": c.cfg.SandboxURL != "", "Auth": c.cfg.RequireToken,
		"Selected": r.URL.Query().Get("integration")}
	if err != nil {
		data["Error"] = err.Error()
	}
	if err := c.page.ExecuteTemplate(w, "index.html", data); err != nil {
		c.log.Warn("console page", "err", err)
	}
}

// apiFunc answers one API call with a value to encode or an error.
type apiFunc func(r *http.Request) (any, error)

// httpError is an error with a status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, sprintf(format, args...)}
}

// api wraps an API handler: access, CSRF guard, JSON in and out.
func (c *Console) api(h apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.authorized(r) {
			writeError(w, http.StatusUnauthorized, "log in to the console with a console token (reload the page)")
			return
		}
		if r.Method != http.MethodGet {
			if !consoleCall(r) {
				writeError(w, http.StatusForbidden, "console API calls need the X-Plumb-Console header and a JSON body")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		v, err := h(r)
		if err != nil {
			status := http.StatusInternalServerError
			var he *httpError
			if errors.As(err, &he) {
				status = he.status
			}
			writeError(w, status, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// consoleCall reports whether r carries the X-Plumb-Console header and a
// JSON content type, which a cross-site form or link cannot send.
func consoleCall(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Header.Get("X-Plumb-Console") != "" && mt == "application/json"
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("reading the body: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("invalid JSON: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// marshal is json.Marshal, HTML-escaping kept (<, > and & as \u003c…):
// answers are data for the page's textContent, never markup.
func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// integration is one integration file as the console lists it.
type integration struct {
	ID    string   `json:"id"` // the file, relative to Dir (slashes)
	File  string   `json:"file"`
	Name  string   `json:"name,omitempty"`
	Steps []string `json:"steps"`
	Error string   `json:"error,omitempty"`
	path  string
}

// resolve maps an integration id from the page to its file; only files the
// service discovers are accepted.
func (c *Console) resolve(id string) (string, error) {
	files, err := c.cfg.Files()
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if c.idOf(f) == id {
			return f, nil
		}
	}
	return "", &httpError{http.StatusNotFound, "no integration " + quote(id)}
}

func (c *Console) idOf(file string) string {
	rel, err := filepath.Rel(c.cfg.Dir, file)
	if err != nil {
		rel = filepath.Base(file)
	}
	return filepath.ToSlash(rel)
}

func (c *Console) integrations() ([]integration, error) {
	files, err := c.cfg.Files()
	if err != nil {
		return nil, err
	}
	out := make([]integration, 0, len(files))
	for _, f := range files {
		in := integration{ID: c.idOf(f), File: f, path: f, Steps: []string{}}
		src, err := steps.ReadFile(f)
		if err == nil {
			var p *planInfo
			p, _, err = c.parseInfo(f, src)
			if p != nil {
				in.Name, in.Steps = p.name, p.steps
			}
		}
		if err != nil {
			in.Error = c.redactor(f).Redact(err.Error())
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b integration) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (c *Console) listIntegrations(r *http.Request) (any, error) {
	list, err := c.integrations()
	if err != nil {
		return nil, err
	}
	return map[string]any{"integrations": list, "sandbox": c.cfg.SandboxURL != ""}, nil
}
