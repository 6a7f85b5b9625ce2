// Package postman imports requests of a Postman collection (format v2.1)
// into a draft plumb integration: one request, or a folder's requests as
// a flow of steps. {{variables}} become settings (collection variables,
// secret when Postman or their name says so) or lead fields; auth blocks
// map onto plumb auth; saved example responses become test cases.
package postman

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// Options select what to import.
type Options struct {
	// Request names one request (its name, or "Folder/Name"); Folder
	// names a folder whose requests become one flow.
	Request, Folder string
	// Name is the integration's name (default: the request's or folder's).
	Name string
}

// entry is a request with the folders above it.
type entry struct {
	path []string
	it   *item
	auth *auth // the auth that applies (inherited)
	// scripts names where the pre-request scripts that run before it are
	// (the collection, a folder, the request)
	scripts []string
}

func (e *entry) String() string {
	return strings.Join(append(append([]string(nil), e.path...), e.it.Name), "/")
}

// Import reads a collection and returns the draft integration of the
// request or folder opts select.
func Import(file string, data []byte, opts Options) (*importer.Integration, error) {
	var c collection
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, importer.Errorf("export the collection from Postman as Collection v2.1 (JSON)", "%s is not a Postman collection: %s", file, firstLine(err.Error()))
	}
	if c.Info.Schema == "" && c.Info.Name == "" || (!strings.Contains(c.Info.Schema, "collection") && c.Info.Schema != "") {
		return nil, importer.Errorf("export the collection from Postman as Collection v2.1 (JSON)", "%s is not a Postman collection (no info.schema)", file)
	}
	if strings.Contains(c.Info.Schema, "/v1.") {
		return nil, importer.Errorf("export it again from Postman as Collection v2.1", "%s is a Postman v1 collection", file)
	}
	if err := importer.CheckText(file, string(data)); err != nil {
		return nil, err
	}
	var all []*entry
	var scripts []string
	if preRequest(c.Event) {
		scripts = []string{"the collection"}
	}
	walk(c.Item, nil, c.Auth, scripts, &all)
	picked, name, err := choose(file, &c, all, opts)
	if err != nil {
		return nil, err
	}
	return build(file, &c, picked, firstNonEmpty(opts.Name, name))
}

// walk lists the requests below items, depth first, with their auth.
func walk(items []*item, path []string, inherited *auth, scripts []string, out *[]*entry) {
	for _, it := range items {
		if it == nil {
			continue
		}
		a := inherited
		if it.Auth != nil && it.Auth.Type != "inherit" {
			a = it.Auth
		}
		s := scripts
		if preRequest(it.Event) {
			where := "the request"
			if it.Request == nil {
				where = "the folder " + strings.Join(append(append([]string(nil), path...), it.Name), "/")
			}
			s = append(s[:len(s):len(s)], where)
		}
		if it.Request == nil {
			walk(it.Item, append(append([]string(nil), path...), it.Name), a, s, out)
			continue
		}
		if it.Request.Auth != nil && it.Request.Auth.Type != "inherit" {
			a = it.Request.Auth
		}
		*out = append(*out, &entry{path: path, it: it, auth: a, scripts: s})
	}
}

// choose picks the request or folder opts name, or the only request.
func choose(file string, c *collection, all []*entry, opts Options) ([]*entry, string, error) {
	if len(all) == 0 {
		return nil, "", importer.Errorf("add a request to it in Postman and export it again", "%s has no requests", file)
	}
	switch {
	case opts.Request != "":
		var found []*entry
		for _, e := range all {
			if e.it.Name == opts.Request || e.String() == opts.Request {
				found = append(found, e)
			}
		}
		switch len(found) {
		case 1:
			return found, found[0].it.Name, nil
		case 0:
			return nil, "", list(all, "choose one of the requests below", "%s has no request %q", file, opts.Request)
		}
		return nil, "", list(found, "name it with its folder: --request 'Folder/Name'", "%s has %d requests named %q", file, len(found), opts.Request)
	case opts.Folder != "":
		var found []*entry
		for _, e := range all {
			p := strings.Join(e.path, "/")
			if p == opts.Folder || strings.HasPrefix(p, opts.Folder+"/") || (len(e.path) > 0 && e.path[len(e.path)-1] == opts.Folder) {
				found = append(found, e)
			}
		}
		if len(found) == 0 {
			return nil, "", list(all, "choose a folder of the requests below", "%s has no folder %q", file, opts.Folder)
		}
		return found, opts.Folder, nil
	case len(all) == 1:
		return all, all[0].it.Name, nil
	}
	return nil, "", list(all, "choose one with --request NAME, or --folder NAME for a flow of a folder's requests", "%s has %d requests", file, len(all))
}

func list(es []*entry, hint, format string, args ...any) error {
	e := &importer.Error{Msg: fmt.Sprintf(format, args...), Hint: hint}
	for _, x := range es {
		method := "GET"
		if x.it.Request.Method != "" {
			method = strings.ToUpper(x.it.Request.Method)
		}
		e.Detail = append(e.Detail, fmt.Sprintf("%-7s %s", method, x.String()))
	}
	return e
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// varRE is a Postman {{variable}} reference.
var varRE = regexp.MustCompile(`\{\{\s*([^{}\s][^{}]*?)\s*\}\}`)

// refs marks the {{variables}} of Postman text as references.
func refs(s string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		return importer.Ref(strings.TrimSpace(m[2 : len(m)-2]))
	})
}
