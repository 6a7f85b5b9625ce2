package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// authSection is a compiled auth section: auth.Config with its templated
// values, rendered once per Settings.
type authSection struct {
	pos    steps.Pos
	cfg    auth.Config
	fields []authField
}

// authField is one templated value of an auth section, at a reflect index
// path into auth.Config (elem is the list index or map key, if any).
type authField struct {
	index []int
	elem  any
	tmpl  *template.Template
}

// noAuth marks a step that sends no credentials.
const noAuth = -1

// authSection compiles an auth section and returns its index in the plan.
func (c *compiler) authSection(a *steps.Auth) int {
	if steps.AuthType(a.Type) == steps.AuthNone {
		return noAuth
	}
	if strings.HasPrefix(a.Type, "x-") && c.plan.schemes[a.Type] == nil {
		c.errs.Add(a.Pos, "custom schemes are registered with engine.WithAuthScheme", "auth: no scheme %q is registered", a.Type)
	}
	cfg := a.AuthConfig // auth.Config is the model's type
	sec := &authSection{pos: a.Pos, cfg: cfg}
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "message" { // the HMAC signing template, run by package auth
			continue
		}
		pos, ok := a.KeyPos[key]
		if !ok {
			pos = a.Pos
		}
		add := func(s string, elem any) {
			if !strings.Contains(s, "{{") {
				return
			}
			tm := c.tmpl(steps.String{Value: s, Pos: pos}, template.Plain, scopeSettings)
			sec.fields = append(sec.fields, authField{index: []int{i}, elem: elem, tmpl: tm})
		}
		switch fv := v.Field(i); fv.Kind() {
		case reflect.String:
			add(fv.String(), nil)
		case reflect.Slice:
			for j := range fv.Len() {
				add(fv.Index(j).String(), j)
			}
		case reflect.Map:
			for _, k := range fv.MapKeys() {
				add(fv.MapIndex(k).String(), k.String())
			}
		}
	}
	c.plan.auths = append(c.plan.auths, sec)
	return len(c.plan.auths) - 1
}

// render fills the section's templates from settings.
func (sec *authSection) render(settings map[string]any) (auth.Config, error) {
	cfg := sec.cfg
	// copy the reference fields so sections never share a rendered value
	cfg.Scopes = append([]string(nil), cfg.Scopes...)
	cfg.Tokens = append([]string(nil), cfg.Tokens...)
	cfg.SignedHeaders = append([]string(nil), cfg.SignedHeaders...)
	if cfg.Params != nil {
		params := make(map[string]string, len(cfg.Params))
		for k, v := range cfg.Params {
			params[k] = v
		}
		cfg.Params = params
	}
	data := map[string]any{"settings": settings}
	v := reflect.ValueOf(&cfg).Elem()
	for _, f := range sec.fields {
		val, err := f.tmpl.Value(data)
		if err != nil {
			return cfg, err
		}
		fv := v.FieldByIndex(f.index)
		switch e := f.elem.(type) {
		case nil:
			fv.SetString(plain(val))
		case int:
			if list, ok := val.([]any); ok && fv.Len() == 1 { // tokens: ["{{settings.tokens}}"]
				out := make([]string, len(list))
				for i, x := range list {
					out[i] = plain(x)
				}
				fv.Set(reflect.ValueOf(out))
				continue
			}
			fv.Index(e).SetString(plain(val))
		case string:
			fv.SetMapIndex(reflect.ValueOf(e), reflect.ValueOf(plain(val)))
		}
	}
	return cfg, nil
}

func plain(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// authenticators builds one Authenticator per auth section for a runner.
func (r *Runner) authenticators(cfg Config, errs *steps.ErrorList) ([]auth.Config, []auth.Authenticator) {
	p := r.plan
	cfgs := make([]auth.Config, len(p.auths))
	out := make([]auth.Authenticator, len(p.auths))
	for i, sec := range p.auths {
		ac, err := sec.render(r.values)
		if err != nil {
			errs.Add(sec.pos, "", "auth: %v", err)
			continue
		}
		if ctor, ok := p.schemes[ac.Type]; ok {
			a, err := ctor(ac)
			if err != nil {
				errs.Add(sec.pos, "", "auth %s: %v", ac.Type, err)
				continue
			}
			cfgs[i], out[i] = ac, a
			continue
		}
		opts := []auth.Option{auth.WithHTTPClient(r.tokenClient), auth.WithClock(p.clock.Now), auth.WithIntegration(p.ref())}
		if cfg.Tokens != nil {
			opts = append(opts, auth.WithTokenStore(cfg.Tokens))
		}
		if cfg.LoginHint != "" {
			opts = append(opts, auth.WithLoginHint(cfg.LoginHint))
		}
		a, err := auth.New(ac, opts...)
		if err != nil {
			errs.Add(sec.pos, "", "%v", err)
			continue
		}
		cfgs[i], out[i] = ac, a
	}
	return cfgs, out
}

// authSecrets lists the credentials of a rendered auth section, for the
// runner's masker: every field Config.String hides, the user:password pair
// a basic Authorization header encodes, and the client_id:client_secret
// pair an OAuth2 token request sends in one.
func authSecrets(c auth.Config) []string {
	out := []string{c.Value, c.Password, c.Token, c.ClientSecret, c.Secret}
	out = append(out, c.Tokens...)
	if c.Password != "" {
		out = append(out, c.Username+":"+c.Password)
	}
	if c.ClientSecret != "" {
		out = append(out, url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret))
	}
	return out
}

// AuthError is a request that could not be signed, such as an OAuth2 token
// endpoint that refused the client.
type AuthError struct{ Err error }

// Error implements error.
func (e *AuthError) Error() string { return "auth: " + strings.TrimPrefix(e.Err.Error(), "auth: ") }

// Unwrap returns the underlying error.
func (e *AuthError) Unwrap() error { return e.Err }

func (s *Runner) authn(i int) auth.Authenticator {
	if i < 0 || i >= len(s.auths) {
		return nil
	}
	return s.auths[i]
}

// authSectionKey is the context key under which a call into an oauth2
// authenticator carries its auth section's index, so the token requests it
// makes (tokenTransport) say whose tokens they fetch.
type authSectionKey struct{}

// authContext is ctx for a call into the authenticator of section i: it
// names the section when that is an oauth2 one.
func (s *Runner) authContext(ctx context.Context, i int) context.Context {
	if i < 0 || i >= len(s.authCfgs) || s.authCfgs[i].Type != auth.TypeOAuth2 {
		return ctx
	}
	return context.WithValue(ctx, authSectionKey{}, i)
}

// tokenKey is what the tokens of the section a token request's context
// names are the current value of ("" when it names none).
func tokenKey(ctx context.Context) string {
	if i, ok := ctx.Value(authSectionKey{}).(int); ok {
		return strconv.Itoa(i)
	}
	return ""
}

// sign applies the step's credentials to one try.
func (s *Runner) sign(ctx context.Context, st *step, req *http.Request, pr *request) error {
	a := s.authn(pr.auth)
	if a == nil {
		return nil
	}
	before := make(map[string]string, len(req.Header))
	for k, v := range req.Header {
		before[k] = strings.Join(v, "\x00")
	}
	oauth := s.authCfgs[pr.auth].Type == auth.TypeOAuth2
	if err := a.Apply(s.authContext(ctx, pr.auth), req, pr.body); err != nil {
		return &AuthError{Err: err}
	}
	pr.sent = req.Header
	if pr.cred == nil {
		pr.cred = map[string]bool{}
	}
	for k, v := range req.Header {
		if before[k] != strings.Join(v, "\x00") {
			pr.cred[k] = true
			if oauth && len(v) > 0 {
				// the token in use — one loaded from the store included —
				// is masked before a partner can echo it
				_, tok, _ := strings.Cut(v[0], " ")
				s.live.learn(tok, strconv.Itoa(pr.auth)+"/access", time.Time{})
			}
		}
	}
	return nil
}

// reauth asks the step's credentials to renew themselves after a 401.
func (s *Runner) reauth(ctx context.Context, st *step, pr *request) error {
	a := s.authn(pr.auth)
	r, ok := a.(auth.Reauther)
	if !ok {
		return errors.New("no credentials to renew")
	}
	failed, err := http.NewRequestWithContext(ctx, pr.method, pr.url, nil)
	if err != nil {
		return err
	}
	if pr.sent != nil {
		failed.Header = pr.sent
	}
	if err := r.Reauth(s.authContext(ctx, pr.auth), failed); err != nil {
		return fmt.Errorf("re-authenticating failed: %s", s.Redact(err.Error()))
	}
	return nil
}
