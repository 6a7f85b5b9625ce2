package steps

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// checkURL reports a request URL whose literal start (the text before the
// first template action) is not an absolute http(s) URL: file://, ftp://,
// a relative path. A URL starting with an action (the base from settings)
// is checked when it is rendered.
func checkURL(s String, what string, errs *ErrorList) {
	if !s.IsSet() {
		return
	}
	lit, _, _ := strings.Cut(s.Value, "{{")
	if lit == "" && strings.HasPrefix(s.Value, "{{") {
		return
	}
	low := strings.ToLower(lit)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(low, scheme) && (len(lit) > len(scheme) || len(s.Value) > len(lit)) {
			return
		}
	}
	hint := "start it with http:// or https://, or with a settings value such as {{settings.base_url}}"
	switch {
	case lit == "":
		errs.Add(s.Pos, hint, "%s is empty", what)
	case strings.TrimSpace(lit) != lit && strings.HasPrefix(strings.ToLower(strings.TrimSpace(lit)), "http"):
		errs.Add(s.Pos, "remove the spaces around the URL", "%s has leading or trailing spaces", what)
	case strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://"):
		errs.Add(s.Pos, hint, "%s is not an absolute http(s) URL", what)
	case strings.Contains(low, "://"):
		scheme, _, _ := strings.Cut(low, "://")
		errs.Add(s.Pos, hint, "%s: scheme %q is not allowed, only http and https", what, scheme)
	default:
		errs.Add(s.Pos, hint, "%s is not an absolute http(s) URL", what)
	}
}

// validHeaderName reports whether name is an HTTP header field name (an
// RFC 9110 token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkHeaders reports header names that are not tokens and literal CR,
// LF or NUL in header values (which would split or truncate the request).
func checkHeaders(h Map[String], what string, errs *ErrorList) {
	seen := make(map[string]string, len(h))
	for _, e := range h {
		if first, ok := seen[strings.ToLower(e.Key)]; ok {
			errs.Add(e.Pos, "header names ignore case, so one would replace the other: keep one", "%s: %q and %q are the same header", what, first, e.Key)
		} else {
			seen[strings.ToLower(e.Key)] = e.Key
		}
		if !validHeaderName(e.Key) {
			errs.Add(e.Pos, "header names are letters, digits and !#$%&'*+-.^_`|~, with no spaces, colons or line breaks", "%s: %q is not a valid header name", what, e.Key)
		}
		if strings.ContainsAny(e.Value.Value, "\r\n\x00") {
			errs.Add(e.Value.Pos, "a header value is one line: remove the line break (a block scalar | or > keeps them)", "%s.%s: header value contains CR, LF or NUL", what, e.Key)
		}
	}
}

// checkWhen reports a condition written as a YAML number or other non-text
// literal: `when: 1` is not a condition (true and false are).
func checkWhen(s String, what string, errs *ErrorList) {
	if !s.IsSet() {
		return
	}
	switch s.tag {
	case "!!int", "!!float":
		errs.Add(s.Pos, "a condition is true, false or an expression such as lead.value > 100", "%s must be a condition, got the number %s", what, s.Value)
	case "!!binary", "!!timestamp":
		errs.Add(s.Pos, "a condition is true, false or an expression such as lead.value > 100", "%s must be a condition, got %q", what, s.Value)
	}
}

// checkDefault reports a setting default that does not fit its type.
func (s *Setting) checkDefault(key string, errs *ErrorList) {
	if s.Default == nil {
		return
	}
	pos := s.Pos
	if p, ok := s.KeyPos["default"]; ok {
		pos = p
	}
	bad := func(want string) {
		errs.Add(pos, "give a "+want+" or leave default out", "setting %q: default %s is not a %s", key, describeDefault(s.Default), want)
	}
	switch s.Type {
	case SettingNumber:
		switch x := s.Default.(type) {
		case int, int64, uint64:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				bad("number")
			}
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				bad("number")
			}
		default:
			bad("number")
		}
	case SettingBool:
		switch x := s.Default.(type) {
		case bool:
		case string:
			if _, err := strconv.ParseBool(strings.TrimSpace(x)); err != nil {
				bad("boolean (true or false)")
			}
		default:
			bad("boolean (true or false)")
		}
	case SettingList:
		if _, ok := s.Default.([]any); !ok {
			bad("list")
		}
	case SettingObject:
		if _, ok := s.Default.(map[string]any); !ok {
			bad("mapping")
		}
	case "", SettingString:
		switch s.Default.(type) {
		case []any, map[string]any:
			bad("string")
		}
	}
}

// describeDefault shows a default in a message: short scalars as written
// (settings defaults are part of the file, not secrets), else their kind.
func describeDefault(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) <= 40 {
			return strconv.Quote(x)
		}
		return "(a string)"
	case []any:
		return "(a list)"
	case map[string]any:
		return "(a mapping)"
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x)
	}
	return "(a value)"
}

// checkValues reports what makes an auth section unusable whatever the
// settings say: keys of another type, enum values not declared in vocab.go,
// required keys left out or empty, an HMAC message that is not a template,
// OAuth2 URLs that are not http(s). A value written as a template over
// settings is checked when it is rendered (at bind).
func (a *Auth) checkValues(errs *ErrorList) {
	at := func(key string) Pos {
		if p, ok := a.KeyPos[key]; ok {
			return p
		}
		return a.Pos
	}
	typ := AuthType(a.Type)
	keys, builtIn := AuthKeys[typ]
	if !builtIn {
		return // unknown (reported) or x-NAME: the scheme's own keys
	}
	var extra []string
	for key := range a.KeyPos {
		if key != "type" && !slices.Contains(keys, key) {
			extra = append(extra, key)
		}
	}
	slices.Sort(extra)
	for _, key := range extra {
		hint := "an auth of type " + a.Type + " takes no keys"
		if len(keys) > 0 {
			hint = "an auth of type " + a.Type + " takes " + strings.Join(keys, ", ")
		}
		errs.Add(at(key), hint, "auth: %s is not a key of type %s", key, a.Type)
	}
	enum := func(key, v string, ok bool, hint string) {
		if v != "" && !ok {
			errs.Add(at(key), hint, "auth: %s %s %q is not a known value", a.Type, key, v)
		}
	}
	// a key whose value did not decode (tokens: abc) is reported once, by
	// the decoder
	reported := func(key string) bool {
		p, ok := a.KeyPos[key]
		return ok && slices.ContainsFunc(*errs, func(e *Error) bool { return e.Pos == p })
	}
	needs := func(key, v, example string) {
		if strings.TrimSpace(v) == "" && !reported(key) {
			errs.Add(at(key), "e.g. "+key+": "+example, "auth: %s needs %s", a.Type, key)
		}
	}
	switch typ {
	case AuthAPIKey:
		enum("in", a.In, APIKeyIns.Has(APIKeyIn(a.In)), APIKeyIns.Hint())
		needs("value", a.Value, `"{{settings.api_key}}"`)
	case AuthBasic:
		needs("username", a.Username, `"{{settings.user}}"`)
	case AuthBearer:
		needs("token", a.Token, `"{{settings.token}}"`)
	case AuthOAuth2:
		enum("grant", a.Grant, OAuth2Grants.Has(OAuth2Grant(a.Grant)), OAuth2Grants.Hint())
		enum("auth_style", a.AuthStyle, OAuth2AuthStyles.Has(OAuth2AuthStyle(a.AuthStyle)), OAuth2AuthStyles.Hint()+"; leave it out to auto-detect")
		needs("token_url", a.TokenURL, `"{{settings.base_url}}/oauth/token"`)
		needs("client_id", a.ClientID, `"{{settings.client_id}}"`)
		switch OAuth2Grant(a.Grant) {
		case GrantClientCredentials, "":
			needs("client_secret", a.ClientSecret, `"{{settings.client_secret}}"`)
		case GrantAuthorizationCode:
			needs("auth_url", a.AuthURL, `"https://partner.example/oauth/authorize"`)
		}
		for _, key := range []string{"token_url", "auth_url"} {
			v := a.TokenURL
			if key == "auth_url" {
				v = a.AuthURL
			}
			if v != "" {
				checkURL(String{Value: v, Pos: at(key), set: true}, "auth."+key, errs)
			}
		}
	case AuthHMAC:
		enum("algorithm", a.Algorithm, HMACAlgorithms.Has(HMACAlgorithm(a.Algorithm)), HMACAlgorithms.Hint())
		enum("encoding", a.Encoding, HMACEncodings.Has(HMACEncoding(a.Encoding)), HMACEncodings.Hint())
		enum("timestamp_format", a.TimestampFormat, HMACTimestampFormats.Has(HMACTimestampFormat(a.TimestampFormat)), HMACTimestampFormats.Hint())
		needs("secret", a.Secret, `"{{settings.secret}}"`)
		signed, templated := []string(nil), false
		for _, h := range a.SignedHeaders {
			templated = templated || strings.Contains(h, "{{")
			signed = append(signed, textproto.CanonicalMIMEHeaderKey(h))
		}
		if _, err := ParseHMACMessage(a.Message, signed); err != nil && (!templated || !strings.Contains(err.Error(), "map has no entry")) {
			errs.Add(at("message"), "fields: .Method, .Path, .Query, .Timestamp, .Body, and .Headers of signed_headers", "auth: hmac message: %v", err)
		}
	case AuthRotate:
		if len(a.Tokens) == 0 && !reported("tokens") {
			errs.Add(at("tokens"), `e.g. tokens: ["{{settings.token_a}}", "{{settings.token_b}}"]`, "auth: rotate needs tokens")
		}
		for i, t := range a.Tokens {
			if strings.TrimSpace(t) == "" {
				errs.Add(at("tokens"), "remove it or give it a value", "auth: rotate tokens[%d] is empty", i)
			}
		}
	}
}

// templateErrRE is the name and position text/template puts before its
// errors ("template: hmac message:1:2: executing \"hmac message\" ").
var templateErrRE = regexp.MustCompile(`^template: hmac message:[0-9:]* (executing "hmac message" )?`)

// DefaultHMACMessage is the hmac auth message when message is left out:
// method + path + timestamp + body.
const DefaultHMACMessage = "{{.Method}}{{.Path}}{{.Timestamp}}{{.Body}}"

// HMACMessage is the data an hmac auth's message template is executed with.
type HMACMessage struct {
	// Method is the request method, e.g. "POST".
	Method string
	// Path is the escaped path as sent on the wire, e.g. "/v1/a%20b".
	Path string
	// Query is the raw query string without '?', as sent.
	Query string
	// Timestamp is the value sent in the timestamp header.
	Timestamp string
	// Body is the request body.
	Body string
	// Headers maps each canonical SignedHeaders name to the request's value
	// (empty when absent).
	Headers map[string]string
}

// ParseHMACMessage compiles an hmac auth's message template (the default
// when msg is empty) and executes it once against empty data whose Headers
// are signed (canonical names), so a misspelt field (.Metod) or a header
// missing from signed_headers fails here, not per request. The file is
// checked with it at load and package auth signs with it.
func ParseHMACMessage(msg string, signed []string) (*template.Template, error) {
	if msg == "" {
		msg = DefaultHMACMessage
	}
	t, err := template.New("hmac message").Option("missingkey=error").Parse(msg)
	if err != nil {
		return nil, errors.New(templateErrRE.ReplaceAllString(err.Error(), ""))
	}
	sample := make(map[string]string, len(signed))
	for _, h := range signed {
		sample[h] = ""
	}
	if err := t.Execute(io.Discard, HMACMessage{Headers: sample}); err != nil {
		msg := templateErrRE.ReplaceAllString(err.Error(), "")
		msg = strings.Replace(msg, " in type steps.HMACMessage", "", 1)
		if strings.Contains(msg, "map has no entry") {
			msg += " (headers must be listed in signed_headers)"
		}
		return nil, errors.New(msg)
	}
	return t, nil
}
