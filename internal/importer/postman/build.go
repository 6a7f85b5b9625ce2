package postman

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// build writes the integration of the picked requests: one step each.
func build(file string, c *collection, picked []*entry, name string) (*importer.Integration, error) {
	in := &importer.Integration{Name: importer.Kebab(name)}
	in.Description = "Imported from the Postman collection " + strings.TrimSpace(c.Info.Name) + ": " + picked[0].String()
	if len(picked) > 1 {
		in.Description = "Imported from the Postman collection " + strings.TrimSpace(c.Info.Name) + ": a flow of " + itoa(len(picked)) + " requests"
	}
	in.Header = []string{
		"Imported by `plumb import postman` from " + file + ". Check it: plumb validate FILE; plumb test FILE",
		"Collection variables are settings (secret ones and credentials without their value: give",
		"those in a settings file, with --set, or in the environment variable each one names);",
		"other {{variables}} in paths, queries and bodies are lead fields.",
	}
	if err := importer.CheckFlowSize(len(picked), "the folder", "pick a smaller folder, or one request with --request"); err != nil {
		return nil, err
	}
	b := importer.NewBuilder(in, variables(c))
	b.KeepLiterals = true
	var recs []*importer.Recorded
	for i, e := range picked {
		r := recorded(e, b.Vars)
		if i > 0 && e.auth != picked[0].auth && !sameAuth(e.auth, picked[0].auth) {
			r.Notes = append(r.Notes, "TODO(import): this request has its own auth in Postman; the integration's auth (the first request's) applies to it")
			r.Auth = nil
		}
		step, err := b.Step(r)
		if err != nil {
			return nil, importer.Errorf("fix the request in Postman and export again", "request %s: %v", e, err)
		}
		in.Steps = append(in.Steps, step)
		recs = append(recs, r)
	}
	cases(b, picked, recs)
	return in, nil
}

func sameAuth(a, b *auth) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// variables are the collection's variables: declared, with their value;
// secret when Postman marks them or their name says so.
func variables(c *collection) map[string]*importer.Var {
	vars := map[string]*importer.Var{}
	for _, v := range c.Variable {
		if v.Key == "" || v.Disabled {
			continue
		}
		vars[v.Key] = &importer.Var{Value: v.text(), Declared: true, Secret: v.Type == "secret" || importer.SecretName(v.Key)}
	}
	return vars
}

var pathVar = regexp.MustCompile(`/:([A-Za-z_][A-Za-z0-9_]*)`)

// recorded turns a Postman request into the request it sends.
func recorded(e *entry, vars map[string]*importer.Var) *importer.Recorded {
	req := e.it.Request
	r := &importer.Recorded{Name: e.it.Name, Method: strings.ToUpper(req.Method)}
	for _, where := range e.scripts {
		r.Notes = append(r.Notes, "TODO(import): a pre-request script of "+where+" runs before this request in Postman; plumb runs no scripts: "+
			"write what it computes by hand (a signature: auth type hmac; a token: oauth2 or an earlier step's capture; a value: a setting or vars)")
	}
	raw := req.URL.Raw
	for _, v := range req.URL.Variable {
		if _, ok := vars[v.Key]; !ok && v.Key != "" {
			vars[v.Key] = &importer.Var{Value: v.text()}
		}
	}
	raw = pathVar.ReplaceAllStringFunc(raw, func(m string) string { return "/" + importer.Ref(m[2:]) })
	r.URL = refs(raw)
	if !strings.Contains(r.URL, "://") && !importer.StartsWithRef(r.URL) && r.URL != "" {
		r.URL = "https://" + r.URL
		r.Notes = append(r.Notes, "TODO(import): the request's URL has no scheme; this file uses https://")
	}
	for _, h := range req.Header {
		if !h.Disabled && h.Key != "" {
			r.Headers = append(r.Headers, importer.KV{Key: h.Key, Value: refs(h.text())})
		}
	}
	readBody(req.Body, r)
	r.Auth = mapAuth(e.auth, r)
	for _, resp := range e.it.Response {
		if resp != nil && resp.Code/100 == 2 {
			r.Response = answer(resp)
			break
		}
	}
	return r
}

// readBody reads the request's body by its mode.
func readBody(bd *body, r *importer.Recorded) {
	if bd == nil || bd.Disabled {
		return
	}
	switch bd.Mode {
	case "raw":
		r.Body = refs(bd.Raw)
		if bd.Options != nil && bd.Options.Raw != nil && !hasHeader(r, "Content-Type") {
			switch strings.ToLower(bd.Options.Raw.Language) {
			case "json":
				r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/json"})
			case "xml":
				r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/xml"})
			}
		}
	case "urlencoded", "formdata":
		for _, f := range append(append([]kv(nil), bd.URLEncoded...), bd.FormData...) {
			if f.Disabled || f.Key == "" {
				continue
			}
			if f.Type == "file" {
				r.Notes = append(r.Notes, "TODO(import): the form field "+f.Key+" uploads a file, which plumb does not send")
				continue
			}
			r.Form = append(r.Form, importer.KV{Key: f.Key, Value: refs(f.text())})
		}
		r.Multipart = bd.Mode == "formdata"
	case "graphql":
		if bd.GraphQL != nil {
			q, _ := json.Marshal(bd.GraphQL.Query)
			vars := strings.TrimSpace(bd.GraphQL.Variables)
			if vars == "" {
				vars = "{}"
			}
			r.Body = refs(`{"query":` + string(q) + `,"variables":` + vars + `}`)
			r.Headers = append(r.Headers, importer.KV{Key: "Content-Type", Value: "application/json"})
			r.Notes = append(r.Notes, "a GraphQL request: sent as a JSON body with query and variables")
		}
	case "file":
		r.Notes = append(r.Notes, "TODO(import): the request sends a file as its body, which plumb does not send")
	}
}

func hasHeader(r *importer.Recorded, name string) bool {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, name) {
			return true
		}
	}
	return false
}

// mapAuth maps a Postman auth block.
func mapAuth(a *auth, r *importer.Recorded) *importer.Auth {
	if a == nil {
		return nil
	}
	switch a.Type {
	case "noauth", "":
		return nil
	case "apikey":
		return &importer.Auth{Type: "api_key", In: firstNonEmpty(attr(a.APIKey, "in"), "header"), Name: refs(attr(a.APIKey, "key")), Value: refs(attr(a.APIKey, "value"))}
	case "bearer":
		return &importer.Auth{Type: "bearer", Token: refs(attr(a.Bearer, "token"))}
	case "basic":
		return &importer.Auth{Type: "basic", Username: refs(attr(a.Basic, "username")), Password: refs(attr(a.Basic, "password"))}
	case "oauth2":
		grant := attr(a.OAuth2, "grant_type")
		switch grant {
		case "client_credentials", "authorization_code", "authorization_code_with_pkce", "":
		default:
			r.Notes = append(r.Notes, "TODO(import): the collection's OAuth2 grant "+grant+" is not one plumb runs (client_credentials, authorization_code)")
			return nil
		}
		if grant != "client_credentials" && grant != "" {
			grant = "authorization_code"
		}
		o := &importer.OAuth2{Grant: firstNonEmpty(grant, "client_credentials"), TokenURL: refs(attr(a.OAuth2, "accessTokenUrl")), AuthURL: refs(attr(a.OAuth2, "authUrl")),
			ClientID: refs(attr(a.OAuth2, "clientId")), ClientSecret: refs(attr(a.OAuth2, "clientSecret"))}
		if s := attr(a.OAuth2, "scope"); s != "" {
			o.Scopes = strings.Fields(s)
		}
		switch attr(a.OAuth2, "client_authentication") {
		case "body":
			o.AuthStyle = "body"
		case "header":
			o.AuthStyle = "header"
		}
		return &importer.Auth{Type: "oauth2", OAuth2: o}
	}
	r.Notes = append(r.Notes, "TODO(import): the collection's "+a.Type+" auth is not mapped: plumb's auth types are api_key, basic, bearer, oauth2, hmac (docs/format.md, Auth)")
	return nil
}

// answer is a saved example response.
func answer(resp *response) *importer.Response {
	a := &importer.Response{Status: resp.Code, Body: resp.Body}
	for _, h := range resp.Header {
		a.Headers = append(a.Headers, importer.KV{Key: h.Key, Value: h.text()})
	}
	if a.Status == 0 {
		a.Status = 200
	}
	return a
}

// cases writes the flow's case (each request served its first saved
// success answer, or a placeholder), then one case per other saved answer.
func cases(b *importer.Builder, picked []*entry, recs []*importer.Recorded) {
	in := b.In
	if in.NeedsLogin() {
		return
	}
	first := "the requests succeed"
	if len(picked) == 1 {
		first = "the request succeeds"
	}
	desc := ""
	if recs[0].Response == nil {
		desc = "TODO(import): the collection saved no example answer; record one under responses"
	}
	in.Tests = append(in.Tests, b.Case(first, desc))
	for i, e := range picked {
		step := importer.Snake(e.it.Name)
		if i < len(in.Steps) {
			step = in.Steps[i].Get("name").Value.(string)
		}
		for _, resp := range e.it.Response {
			if resp == nil || (recs[i].Response != nil && resp.Code == recs[i].Response.Status && resp.Body == recs[i].Response.Body) {
				continue
			}
			a := answer(resp)
			in.Tests = append(in.Tests, b.CaseServing("saved example "+strings.TrimSpace(resp.Name)+" of "+e.it.Name+" ("+itoa(a.Status)+")", "", map[string]*importer.Response{step: a}))
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
