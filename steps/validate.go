package steps

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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
	for _, e := range h {
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

// checkValues reports auth settings that cannot work: basic without a
// username, OAuth2 URLs that are not http(s).
func (a *Auth) checkValues(errs *ErrorList) {
	at := func(key string) Pos {
		if p, ok := a.KeyPos[key]; ok {
			return p
		}
		return a.Pos
	}
	switch AuthType(a.Type) {
	case AuthBasic:
		if strings.TrimSpace(a.Username) == "" {
			errs.Add(at("username"), "e.g. username: \"{{settings.user}}\"", "auth: basic auth needs a username")
		}
	case AuthOAuth2:
		for key, v := range map[string]string{"token_url": a.TokenURL, "auth_url": a.AuthURL} {
			if v == "" {
				continue
			}
			checkURL(String{Value: v, Pos: at(key), set: true}, "auth."+key, errs)
		}
	}
}
