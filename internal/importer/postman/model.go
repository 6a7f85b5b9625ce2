package postman

import (
	"encoding/json"
	"strings"
)

// collection is a Postman collection, format v2.1 (v2.0 reads the same).
type collection struct {
	Info     info    `json:"info"`
	Item     []*item `json:"item"`
	Auth     *auth   `json:"auth"`
	Variable []kv    `json:"variable"`
	Event    []event `json:"event"`
}

// event is a script Postman runs around a request (listen: prerequest or
// test); its exec is a line or a list of lines.
type event struct {
	Listen string `json:"listen"`
	Script struct {
		Exec any `json:"exec"`
	} `json:"script"`
}

// preRequest reports whether events hold a pre-request script that does
// something (not only blank lines or comments).
func preRequest(events []event) bool {
	for _, e := range events {
		if e.Listen != "prerequest" {
			continue
		}
		lines := []any{e.Script.Exec}
		if l, ok := e.Script.Exec.([]any); ok {
			lines = l
		}
		for _, l := range lines {
			if s, ok := l.(string); ok {
				if t := strings.TrimSpace(s); t != "" && !strings.HasPrefix(t, "//") {
					return true
				}
			}
		}
	}
	return false
}

type info struct {
	Name        string `json:"name"`
	Schema      string `json:"schema"`
	Description any    `json:"description"`
}

// item is a folder (Item set) or a request.
type item struct {
	Name     string      `json:"name"`
	Item     []*item     `json:"item"`
	Request  *request    `json:"request"`
	Response []*response `json:"response"`
	Auth     *auth       `json:"auth"`
	Event    []event     `json:"event"`
}

type request struct {
	Method string `json:"method"`
	URL    urlV   `json:"url"`
	Header []kv   `json:"header"`
	Body   *body  `json:"body"`
	Auth   *auth  `json:"auth"`
}

// urlV is a URL written as a string or as an object.
type urlV struct {
	Raw      string `json:"raw"`
	Query    []kv   `json:"query"`
	Variable []kv   `json:"variable"`
	object   bool
}

func (u *urlV) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		u.Raw = s
		return nil
	}
	type plain urlV
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*u = urlV(p)
	u.object = true
	return nil
}

type body struct {
	Mode       string `json:"mode"`
	Raw        string `json:"raw"`
	URLEncoded []kv   `json:"urlencoded"`
	FormData   []kv   `json:"formdata"`
	GraphQL    *struct {
		Query     string `json:"query"`
		Variables string `json:"variables"`
	} `json:"graphql"`
	Options *struct {
		Raw *struct {
			Language string `json:"language"`
		} `json:"raw"`
	} `json:"options"`
	Disabled bool `json:"disabled"`
}

type response struct {
	Name   string `json:"name"`
	Code   int    `json:"code"`
	Status string `json:"status"`
	Header []kv   `json:"header"`
	Body   string `json:"body"`
}

// kv is a key and value (headers, query, form fields, variables, auth
// attributes).
type kv struct {
	Key      string `json:"key"`
	Value    any    `json:"value"`
	Type     string `json:"type"`
	Disabled bool   `json:"disabled"`
	Src      any    `json:"src"`
}

// text is the value as text (Postman writes numbers and bools too).
func (k kv) text() string {
	switch v := k.Value.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, _ := json.Marshal(k.Value)
	return string(b)
}

type auth struct {
	Type   string `json:"type"`
	APIKey []kv   `json:"apikey"`
	Bearer []kv   `json:"bearer"`
	Basic  []kv   `json:"basic"`
	OAuth2 []kv   `json:"oauth2"`
}

// attr reads an auth attribute.
func attr(list []kv, key string) string {
	for _, a := range list {
		if strings.EqualFold(a.Key, key) {
			return a.text()
		}
	}
	return ""
}
