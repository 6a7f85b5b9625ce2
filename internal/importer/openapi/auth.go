package openapi

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/plumbhq/plumb/internal/importer"
)

// security writes auth: from the operation's security requirement (its
// own, else the spec's): the first alternative whose schemes plumb can
// send. A scheme the requirement combines with it is sent as a header or
// query parameter; what cannot be mapped is a TODO.
func (g *gen) security() {
	g.authHeaders, g.authQuery = &importer.Map{Flow: true}, &importer.Map{Flow: true}
	reqs := g.doc.Security
	if g.op.o.Security != nil {
		reqs = *g.op.o.Security
	}
	schemes := g.schemes()
	if len(reqs) == 0 {
		if len(schemes) > 0 {
			g.in.AuthHead = append(g.in.AuthHead, "TODO(import): the spec declares security schemes ("+strings.Join(sortedKeys(schemes), ", ")+") but the operation requires none; no credentials are sent")
		}
		return
	}
	chosen := -1
	for i, r := range reqs {
		if len(r) > 0 && g.mappable(r, schemes) {
			chosen = i
			break
		}
	}
	if chosen < 0 {
		for i, r := range reqs {
			if len(r) > 0 {
				chosen = i
				break
			}
		}
	}
	if chosen < 0 {
		g.in.AuthHead = append(g.in.AuthHead, "the operation's security is optional ({}): no credentials are sent")
		return
	}
	for i, r := range reqs {
		if i != chosen && len(r) > 0 {
			g.in.AuthHead = append(g.in.AuthHead, "the spec also accepts: "+strings.Join(sortedKeys(r), " + "))
		}
	}
	for _, name := range sortedKeys(reqs[chosen]) {
		g.scheme(name, schemes[name], reqs[chosen][name])
	}
}

func (g *gen) schemes() map[string]*openapi3.SecurityScheme {
	out := map[string]*openapi3.SecurityScheme{}
	if g.doc.Components == nil {
		return out
	}
	for name, r := range g.doc.Components.SecuritySchemes {
		if r != nil && r.Value != nil {
			out[name] = r.Value
		}
	}
	return out
}

// mappable reports whether plumb can send every scheme of a requirement.
func (g *gen) mappable(r openapi3.SecurityRequirement, schemes map[string]*openapi3.SecurityScheme) bool {
	for name := range r {
		s := schemes[name]
		if s == nil {
			return false
		}
		switch s.Type {
		case "apiKey":
			if s.In == "cookie" {
				return false
			}
		case "http":
			if sc := strings.ToLower(s.Scheme); sc != "basic" && sc != "bearer" {
				return false
			}
		case "oauth2":
			if s.Flows == nil || (s.Flows.ClientCredentials == nil && s.Flows.AuthorizationCode == nil) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// scheme maps one security scheme: to auth: when none is set yet, else to
// a header or query parameter reading a secret setting.
func (g *gen) scheme(name string, s *openapi3.SecurityScheme, scopes []string) {
	if s == nil {
		g.in.AuthHead = append(g.in.AuthHead, "TODO(import): the security scheme "+name+" is not declared in components.securitySchemes")
		return
	}
	switch {
	case s.Type == "apiKey":
		g.apiKey(name, s)
	case s.Type == "http" && strings.EqualFold(s.Scheme, "basic") && g.in.Auth == nil:
		user := g.in.AddSetting(&importer.Setting{Name: "username", Required: true, Test: "test-user", Description: "user for " + name + " (HTTP basic)"})
		pass := g.in.AddSetting(&importer.Setting{Name: "password", Required: true, Secret: true})
		g.in.Auth = importer.FlowMap("type", "basic", "username", "{{settings."+user.Name+"}}", "password", "{{settings."+pass.Name+"}}")
		g.authHeaders.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("test-user:"+pass.Test.(string))))
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer") && g.in.Auth == nil:
		tok := g.in.AddSetting(&importer.Setting{Name: "token", Required: true, Secret: true, Description: firstNonEmpty(s.BearerFormat+" bearer token", "bearer token")})
		g.in.Auth = importer.FlowMap("type", "bearer", "token", "{{settings."+tok.Name+"}}")
		g.authHeaders.Set("Authorization", "Bearer "+tok.Test.(string))
	case s.Type == "oauth2" && g.in.Auth == nil && s.Flows != nil && (s.Flows.ClientCredentials != nil || s.Flows.AuthorizationCode != nil):
		g.oauth2(name, s.Flows, scopes)
	default:
		what := s.Type
		if s.Scheme != "" {
			what += " " + s.Scheme
		}
		if s.OpenIdConnectUrl != "" {
			what += " (" + s.OpenIdConnectUrl + ")"
		}
		g.in.AuthHead = append(g.in.AuthHead, "TODO(import): the scheme "+name+" ("+what+") is not mapped: plumb's auth types are api_key, basic, bearer, oauth2 (client_credentials, authorization_code), hmac (docs/format.md, Auth)")
	}
}

// apiKey maps an apiKey scheme (header or query) onto a secret setting.
func (g *gen) apiKey(name string, s *openapi3.SecurityScheme) {
	setting := importer.Snake(strings.TrimPrefix(strings.TrimPrefix(s.Name, "X-"), "x-"))
	if !importer.SecretName(setting) {
		setting = importer.Snake(name)
	}
	st := g.in.AddSetting(&importer.Setting{Name: setting, Required: true, Secret: true, Description: strings.TrimSpace(s.Description)})
	value := "{{settings." + st.Name + "}}"
	switch {
	case s.In == "cookie":
		g.in.AuthHead = append(g.in.AuthHead, "TODO(import): the scheme "+name+" sends the key in the cookie "+s.Name+": the step sends it in a Cookie header")
		g.extraHeader("Cookie", s.Name+"="+value, s.Name+"="+st.Test.(string))
	case g.in.Auth == nil:
		g.in.Auth = importer.FlowMap("type", "api_key", "in", firstNonEmpty(s.In, "header"), "name", s.Name, "value", value)
		g.authValue(s.In, s.Name, st.Test.(string))
	case s.In == "query":
		g.extraQuery = append(g.extraQuery, importer.KV{Key: s.Name, Value: value})
		g.authQuery.Set(s.Name, st.Test)
	default:
		g.extraHeader(s.Name, value, st.Test.(string))
	}
}

func (g *gen) authValue(in, name, test string) {
	if in == "query" {
		g.authQuery.Set(name, test)
		return
	}
	g.authHeaders.Set(name, test)
}

func (g *gen) extraHeader(name, tmpl, test string) {
	g.extraHeaders = append(g.extraHeaders, importer.KV{Key: name, Value: tmpl})
	g.authHeaders.Set(name, test)
}

// oauth2 maps an OAuth2 scheme: client credentials when the spec offers
// them (plumb runs unattended), else authorization code.
func (g *gen) oauth2(name string, flows *openapi3.OAuthFlows, scopes []string) {
	flow, grant := flows.ClientCredentials, "client_credentials"
	if flow == nil {
		flow, grant = flows.AuthorizationCode, "authorization_code"
	}
	a := &importer.Map{}
	a.Set("type", "oauth2")
	a.Set("grant", grant)
	tok := g.in.AddSetting(&importer.Setting{Name: "token_url", Default: g.absolute(flow.TokenURL)})
	a.Set("token_url", "{{settings."+tok.Name+"}}")
	if grant == "authorization_code" {
		au := g.in.AddSetting(&importer.Setting{Name: "auth_url", Default: g.absolute(flow.AuthorizationURL)})
		a.Set("auth_url", "{{settings."+au.Name+"}}")
		g.in.AuthHead = append(g.in.AuthHead, "authorization_code: log in once with plumb auth login FILE (the token is kept and refreshed)")
	}
	id := g.in.AddSetting(&importer.Setting{Name: "client_id", Required: true, Test: "test-client"})
	secret := g.in.AddSetting(&importer.Setting{Name: "client_secret", Required: true, Secret: true})
	a.Set("client_id", "{{settings."+id.Name+"}}")
	a.Set("client_secret", "{{settings."+secret.Name+"}}")
	if len(scopes) > 0 {
		l := &importer.List{Flow: true}
		for _, s := range scopes {
			l.Add(s)
		}
		a.Set("scopes", l)
	}
	g.in.Auth = a
	if flows.ClientCredentials != nil && flows.AuthorizationCode != nil {
		g.in.AuthHead = append(g.in.AuthHead, "the scheme "+name+" also offers authorization_code; client_credentials is used (no login needed)")
	}
}

// absolute resolves a token or authorization URL against the server.
func (g *gen) absolute(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.IsAbs() {
		return raw
	}
	base := g.in.Setting("base_url")
	if base == nil || base.Default == nil {
		return raw
	}
	b, err := url.Parse(base.Default.(string))
	if err != nil {
		return raw
	}
	return b.ResolveReference(u).String()
}
