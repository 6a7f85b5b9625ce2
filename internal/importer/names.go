package importer

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// IsIdent reports whether s can follow a dot in a template (lead.s) and
// name a setting, step or capture.
func IsIdent(s string) bool { return identRE.MatchString(s) }

// Ident returns s when it is an identifier, else s with every run of other
// characters turned into one _ ("first-name" → "first_name"), prefixed
// with f_ when it would start with a digit; "field" when nothing is left.
func Ident(s string) string {
	if IsIdent(s) {
		return s
	}
	var b strings.Builder
	under := false
	for _, r := range s {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.TrimRight(b.String(), "_")
	switch {
	case out == "":
		return "field"
	case out[0] >= '0' && out[0] <= '9':
		return "f_" + out
	}
	return out
}

// Words splits a name into lower-case words at case changes, digits
// boundaries kept, and at every character that is not a letter or digit:
// "createPets" → [create pets], "X-API-Key" → [x api key],
// "access_token" → [access token].
func Words(s string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if len(cur) > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// Snake returns s as a snake_case identifier ("createPets" → "create_pets").
func Snake(s string) string {
	w := Words(s)
	if len(w) == 0 {
		return "x"
	}
	return Ident(strings.Join(w, "_"))
}

// Kebab returns s as a kebab-case name ("Create pets" → "create-pets").
func Kebab(s string) string {
	w := Words(s)
	if len(w) == 0 {
		return "imported"
	}
	return strings.Join(w, "-")
}

// EnvName is the environment variable prefix of an integration's secrets.
func EnvName(s string) string {
	return strings.ToUpper(Snake(s))
}

// Unique returns name, or name_2, name_3 … the first that taken does not
// report as used.
func Unique(name string, taken func(string) bool) string {
	if !taken(name) {
		return name
	}
	for i := 2; ; i++ {
		n := name + "_" + strconv.Itoa(i)
		if !taken(n) {
			return n
		}
	}
}

// secretWords are the words of a name that make its value a credential.
var secretWords = map[string]bool{
	"apikey": true, "token": true, "secret": true, "password": true, "passwd": true, "pwd": true,
	"authorization": true, "auth": true, "signature": true, "sig": true, "session": true,
	"sessionid": true, "cookie": true, "credential": true, "credentials": true, "private": true,
	"accesstoken": true, "jwt": true, "bearer": true, "passphrase": true, "otp": true,
}

// SecretName reports whether a header, query parameter, field or variable
// called name carries a credential: api_key, X-API-Key, access_token,
// clientSecret, password, Authorization, sig, … ("author" and "keyword"
// do not count; "key" counts alone or after api/access/secret/private/
// client/auth/app/subscription).
func SecretName(name string) bool {
	w := Words(name)
	for i, x := range w {
		if secretWords[x] {
			return true
		}
		if x == "key" || x == "keys" {
			if len(w) == 1 || (len(w) == 2 && w[0] == "x") {
				return true
			}
			if i > 0 {
				switch w[i-1] {
				case "api", "access", "secret", "private", "client", "auth", "app", "subscription", "license", "x":
					return true
				}
			}
		}
	}
	return false
}

// SettingName is the setting a credential sent under key is kept in:
// "X-API-Key" → api_key, "access_token" → access_token.
func SettingName(key string) string {
	n := Snake(key)
	if rest, ok := strings.CutPrefix(n, "x_"); ok && rest != "" {
		return rest
	}
	return n
}
