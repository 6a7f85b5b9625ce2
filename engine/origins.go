package engine

import (
	"net"
	"net/url"
	"slices"
	"strings"
	"text/template/parse"

	"github.com/plumbhq/plumb/template"
)

// Origins is where a plan bound to some settings sends requests: the
// origin (scheme, host and port) of every URL its file names — each
// step's, variant's and fallback's URL, the source's, the OAuth2 token and
// authorization endpoints — rendered from the settings, and the
// http.allow_hosts entries whose hosts lead data may pick. A caller that
// holds credentials a file did not choose (plumb serve's test console)
// compares the Origins of an edited file with those of the saved one, and
// refuses requests that Allows does not allow.
//
// A URL's origin is read from its template as literal text and settings
// write it, data (lead, vars, steps, …) writing nothing: data written after
// the URL's base cannot change that origin (templates check that on every
// render), while literal text after the data can ("…{{lead.x}}@other/"),
// and is read. When a condition or loop comes before the URL's host is
// complete, or the settings it needs are missing, the origin is not known
// before a run: Unknown lists such URLs, unless allow_hosts bounds them.
type Origins struct {
	list    []string          // "scheme://host:port", host lower case, sorted, unique
	shown   map[string]string // list entry → as written (the case of secrets kept, for masking)
	hosts   []string          // http.allow_hosts entries
	unknown []string          // file:line:col of URLs whose origin is not known
	mask    *masker
}

// Origins lists the origins the plan sends requests to when bound with
// cfg's settings (resolved as Bind does: values, env, defaults). Settings
// that do not resolve leave the URLs that need them Unknown. Nothing is
// sent and no file is read.
func (p *Plan) Origins(cfg Config) Origins {
	if p == nil || p.in == nil {
		return Origins{}
	}
	values, secrets, _ := p.resolveValues(cfg)
	return p.origins(values, secrets)
}

// Origins is Plan.Origins for the runner's settings.
func (r *Runner) Origins() Origins {
	if r.plan == nil {
		return Origins{}
	}
	return r.plan.origins(r.values, r.secrets)
}

func (p *Plan) origins(values map[string]any, secrets []string) Origins {
	o := Origins{mask: newMasker(secrets), shown: map[string]string{}}
	if p.in.HTTP != nil {
		o.hosts = slices.Clone(p.in.HTTP.AllowHosts)
	}
	add := func(raw, at string, ok bool) {
		origin, _ := originOf(raw)
		switch {
		case ok && o.shown[origin] == "":
			o.shown[origin] = raw
			o.list = append(o.list, origin)
		case !ok && len(o.hosts) == 0 && !slices.Contains(o.unknown, at):
			o.unknown = append(o.unknown, at)
		}
	}
	for _, t := range p.urlTemplates() {
		origin, ok := p.urlOrigin(t, values)
		add(origin, t.Name(), ok)
	}
	for _, sec := range p.auths {
		ac, err := sec.render(values)
		if err != nil {
			o.unknown = append(o.unknown, sec.pos.String())
			continue
		}
		for _, u := range []string{ac.TokenURL, ac.AuthURL} {
			if u == "" {
				continue
			}
			if shown, ok := shownOrigin(u); ok {
				add(shown, sec.pos.String(), true)
			} else {
				o.unknown = append(o.unknown, sec.pos.String())
			}
		}
	}
	slices.Sort(o.list)
	return o
}

// urlTemplates lists every URL template of the plan.
func (p *Plan) urlTemplates() []*template.Template {
	var out []*template.Template
	for _, st := range append(slices.Clip(p.steps), p.source) {
		if st == nil {
			continue
		}
		out = append(out, st.url)
		for _, v := range st.variants {
			out = append(out, v.url)
		}
		for _, f := range st.fallback {
			out = append(out, f.url)
		}
	}
	return slices.DeleteFunc(out, func(t *template.Template) bool { return t == nil })
}

// urlOrigin is the origin of what t renders (as written: see shownOrigin),
// read from its leading literal text and settings actions, with every
// action that reads other data writing nothing — the URL its render check
// compares each rendered URL with (data after the base cannot change that
// origin), so literal text after such data ("…{{lead.x}}@other.host/") is
// read too. False when they do not tell it: a condition, loop or action
// that is neither settings nor data (a variable) comes before the URL's
// authority is complete.
func (p *Plan) urlOrigin(t *template.Template, values map[string]any) (string, bool) {
	data := map[string]any{"settings": values}
	if t.IsLiteral() {
		out, err := t.Render(data)
		if err != nil {
			return "", false
		}
		return shownOrigin(out)
	}
	tree := parse.New("url")
	tree.Mode = parse.SkipFuncCheck
	if _, err := tree.Parse(t.Source(), "", "", map[string]*parse.Tree{}); err != nil || tree.Root == nil {
		return "", false
	}
	var out strings.Builder
	for _, n := range tree.Root.Nodes {
		if authorityDone(out.String()) {
			break
		}
		switch n := n.(type) {
		case *parse.TextNode:
			out.Write(n.Text)
		case *parse.CommentNode:
		case *parse.ActionNode:
			s, kind := p.renderSettingsOnly(n.String(), data)
			if kind == unknownAction {
				return "", false
			}
			out.WriteString(s) // data writes nothing
		default:
			return "", false // a condition or loop
		}
	}
	return shownOrigin(out.String())
}

// actionKind is what renderSettingsOnly found an action to read.
type actionKind int

const (
	settingsAction actionKind = iota // settings and literals only: rendered
	dataAction                       // other data (lead, vars, steps, …): written as nothing
	unknownAction                    // neither, or settings that do not render
)

// renderSettingsOnly renders src, one action of a URL template, when it
// reads nothing but settings. Plain, as the URL's escaper writes settings
// before the URL's path (the only part read here).
func (p *Plan) renderSettingsOnly(src string, data map[string]any) (string, actionKind) {
	t, err := p.tmpl.Compile("origin", src, template.Plain, template.Transient()) // once per call, not per file
	if err != nil {
		return "", unknownAction
	}
	for _, ref := range t.Refs() {
		if root, _, _ := strings.Cut(ref, "."); root != "settings" {
			return "", dataAction
		}
	}
	out, err := t.Render(data)
	if err != nil {
		return "", unknownAction
	}
	return out, settingsAction
}

// authorityDone reports whether a URL's text already holds its whole
// authority: what follows can only be its path, query or fragment.
func authorityDone(s string) bool {
	i := strings.Index(s, "//")
	return i >= 0 && strings.ContainsAny(s[i+2:], "/?#")
}

// originOf is the origin of an http or https URL as "scheme://host:port"
// (host lower case, default port written).
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	return urlOrigin(u, true)
}

// shownOrigin is originOf with the host's case kept.
func shownOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	return urlOrigin(u, false)
}

func urlOrigin(u *url.URL, lower bool) (string, bool) {
	if u == nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case scheme != "http" && scheme != "https":
		return "", false
	case port == "" && scheme == "http":
		port = "80"
	case port == "":
		port = "443"
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if lower {
		host = strings.ToLower(host)
	}
	if host == "" {
		return "", false
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}

// List is the origins ("https://api.example.com:443"), secret values
// masked.
func (o Origins) List() []string {
	out := make([]string, len(o.list))
	for i, origin := range o.list {
		out[i] = o.show(origin)
	}
	return out
}

// show is an origin for display: as written, secrets masked.
func (o Origins) show(origin string) string {
	if s := o.shown[origin]; s != "" {
		origin = s
	}
	return o.mask.text(origin)
}

// AllowHosts is the file's http.allow_hosts entries.
func (o Origins) AllowHosts() []string { return o.masked(o.hosts) }

// Unknown lists the URLs (file:line:col) whose origin is not known before
// a run.
func (o Origins) Unknown() []string { return slices.Clone(o.unknown) }

func (o Origins) masked(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = o.mask.text(s)
	}
	return out
}

// Allows reports whether a request to u stays within o: its origin is
// listed, or allow_hosts lets its host be picked (template.CheckHost).
func (o Origins) Allows(u *url.URL) bool {
	if origin, ok := urlOrigin(u, true); ok && slices.Contains(o.list, origin) {
		return true
	}
	return len(o.hosts) > 0 && u != nil && template.CheckHost(u, o.hosts) == nil
}

// Outside lists what o may reach that saved does not name, for display
// (secret values masked): origins saved neither lists nor allows,
// allow_hosts entries saved does not have, and URLs whose origin is not
// known before a run. Empty means o stays within saved.
func (o Origins) Outside(saved Origins) []string {
	var out []string
	for _, origin := range o.list {
		if u, err := url.Parse(origin); err != nil || !saved.Allows(u) {
			out = append(out, o.show(origin))
		}
	}
	for _, h := range o.hosts {
		if !slices.ContainsFunc(saved.hosts, func(s string) bool { return strings.EqualFold(s, h) }) {
			out = append(out, "allow_hosts: "+o.mask.text(h))
		}
	}
	for _, at := range o.unknown {
		out = append(out, "the URL at "+at+" (its origin is not known before a run)")
	}
	return out
}

// Redactor masks secret values in text the way Runner.Redact does (every
// form and encoding the engine masks), for text that has no Runner: the
// load errors of a file that does not bind, or values known besides a
// runner's own.
type Redactor struct{ m *masker }

// NewRedactor returns a Redactor for secrets (empty values are ignored).
func NewRedactor(secrets ...string) *Redactor { return &Redactor{m: newMasker(secrets)} }

// Redact masks the secrets in text.
func (r *Redactor) Redact(text string) string {
	if r == nil {
		return text
	}
	return r.m.text(text)
}

// Value returns a decoded JSON value (maps, lists, strings, numbers, as
// encoding/json decodes them) with the secrets masked structurally: a
// string that is a secret's form becomes the mask, any other string and
// every map key is masked as text. v is not changed. Mask a structure this
// way rather than its serialised text, which masking could cut inside an
// escape.
func (r *Redactor) Value(v any) any {
	if r == nil || r.m.empty() {
		return v
	}
	return r.m.document(v)
}
