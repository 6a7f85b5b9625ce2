package template

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// removedFuncs are sprig functions a template must never reach: they read the
// process environment, touch the network, mutate their arguments (which may be
// lead data shared between renders) or generate key material.
var removedFuncs = [...]string{
	// environment and network
	"env", "expandenv", "getHostByName",
	// key material / certificates
	"genPrivateKey", "derivePassword", "genCA", "genCAWithKey",
	"genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert",
	"genSignedCertWithKey", "buildCustomCert",
	// mutate a map argument in place (the map may be the caller's data)
	"set", "unset", "merge", "mustMerge", "mergeOverwrite", "mustMergeOverwrite",
}

// rootNames are the names a template may read data from; see the package doc.
var rootNames = [...]string{"lead", "settings", "vars", "steps", "captured", "response", "batch", "state", "page"}

// Roots returns the data roots a template can reference ("lead", "settings", ...).
func Roots() []string { return slices.Clone(rootNames[:]) }

func isRoot(name string) bool {
	return slices.Contains(rootNames[:], name)
}

// optionalFuncs make every data reference in their pipeline optional: a
// missing field yields nil instead of a render error.
var optionalFuncs = [...]string{"default", "coalesce", "empty", "hasKey", "ternary", "required", "and", "or", "not"}

func isOptionalFunc(name string) bool {
	return slices.Contains(optionalFuncs[:], name)
}

// Internal function names. Authors cannot call names starting with "__".
const (
	fnGet       = "__get"  // __get $ "lead.email": required lookup
	fnOpt       = "__opt"  // __opt $ "lead.email": optional lookup
	fnData      = "__data" // __data $: the whole data map
	fnCapture   = "__cap"  // __cap $ VALUE: store VALUE for Template.Value
	fnPlain     = "__plain"
	fnHeader    = "__header"
	fnJSONValue = "__jsonval"
	fnJSONStr   = "__jsonstr"
	fnXML       = "__xml"
	fnXMLCDATA  = "__xmlcdata"
	fnURLPath   = "__urlpath"
	fnURLQuery  = "__urlquery"
	fnURLStrict = "__urlstrict" // data right after a URL base
	fnURLHost   = "__urlhost"   // data in the host, with AllowHosts
	fnEmpty     = "__empty"     // writes nothing: the trusted-only URL variant
)

// execCtx is the dot/$ of every execution. It wraps the caller's data so
// that Value can capture a typed result without copying the data map.
type execCtx struct {
	data map[string]any
	val  any
	// the render's budget (budget.go)
	ctx   context.Context
	done  <-chan struct{} // ctx.Done(); nil when it is never cancelled
	limit budget
	steps int
	work  int64
}

// funcError is an error raised by a plumb function whose message is safe
// to show as is (it contains no data values).
type funcError struct{ msg string }

func (e *funcError) Error() string { return e.msg }

func ferr(msg string) error { return &funcError{msg: msg} }

func (s *Set) funcMap() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for _, name := range removedFuncs {
		delete(fm, name)
	}
	now := s.now
	boundFuncs(fm)

	// Clock-driven replacements.
	fm["now"] = func() time.Time { return now() }
	fm["ago"] = func(v any) string {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case int64:
			t = time.Unix(x, 0)
		case int:
			t = time.Unix(int64(x), 0)
		default:
			t = now()
		}
		return now().Sub(t).Round(time.Second).String()
	}

	// sortAlpha sorts a []string argument in place; sort a copy.
	if orig, ok := fm["sortAlpha"].(func(any) []string); ok {
		fm["sortAlpha"] = func(l any) []string {
			if ss, ok := l.([]string); ok {
				l = slices.Clone(ss)
			}
			return orig(l)
		}
	}

	// ternary with template truthiness, so a missing (nil) condition is false.
	fm["ternary"] = func(vt, vf, cond any) any {
		if truthy(cond) {
			return vt
		}
		return vf
	}
	fm["required"] = func(msg string, v any) (any, error) {
		if v == nil {
			return nil, ferr(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, ferr(msg)
		}
		return v, nil
	}

	// plumb helpers (documented in doc.go).
	fm["digits"] = digits
	fm["toBool"] = ToBool
	fm["toInt"] = ToInt
	fm["toFloat"] = ToFloat
	fm["dateFormat"] = dateFormat
	fm["age"] = func(v any) (int, error) { return age(v, now()) }
	fm["hmacSHA256"] = func(key, msg any) string {
		return hex.EncodeToString(hmacSHA256(key, msg))
	}
	fm["hmacSHA256b64"] = func(key, msg any) string {
		return base64.StdEncoding.EncodeToString(hmacSHA256(key, msg))
	}
	fm["json"] = func(v any) (string, error) { return marshalCompact(v) }
	// sprig's toJson and toPrettyJson use json.Marshal, which writes < > &
	// as \u003c \u003e \u0026; partners that sign raw bodies would see
	// other bytes than the author wrote.
	fm["toJson"] = func(v any) string { s, _ := marshalCompact(v); return s }
	fm["mustToJson"] = func(v any) (string, error) { return marshalCompact(v) }
	fm["toPrettyJson"] = func(v any) string { s, _ := marshalIndent(v); return s }
	fm["mustToPrettyJson"] = func(v any) (string, error) { return marshalIndent(v) }

	// Root placeholders: they make `lead.email` parse; the compiler rewrites
	// every use into a lookup, so they never run.
	for _, r := range rootNames {
		fm[r] = func() (any, error) { return nil, errors.New("internal error: root reference was not rewritten") }
	}

	// Internals.
	fm[fnGet] = func(c *execCtx, path string) (any, error) { return lookup(c.data, path, false) }
	fm[fnOpt] = func(c *execCtx, path string) (any, error) { return lookup(c.data, path, true) }
	fm[fnData] = func(c *execCtx) map[string]any { return c.data }
	fm[fnCapture] = func(c *execCtx, v any) string { c.val = v; return "" }
	fm[fnPlain] = func(v any) string { return toText(v) }
	fm[fnHeader] = escapeHeader
	fm[fnJSONValue] = marshalCompact
	fm[fnJSONStr] = func(v any) string { return jsonStringContent(toText(v)) }
	fm[fnXML] = func(v any) string { return xmlEscape(toText(v)) }
	fm[fnXMLCDATA] = func(v any) string { return cdataEscape(toText(v)) }
	fm[fnURLPath] = func(v any) string { return pathEscape(toText(v)) }
	fm[fnURLQuery] = func(v any) string { return queryEscape(toText(v)) }
	fm[fnURLStrict] = func(v any) string { return strictEscape(toText(v)) }
	fm[fnURLHost] = func(v any) string { return hostEscape(toText(v)) }
	fm[fnEmpty] = func(any) string { return "" }
	fm[fnTick] = func(c *execCtx) (string, error) { return "", c.tick() }
	fm[fnCharge] = func(c *execCtx, v any) (any, error) { return v, c.charge(shallowSize(v)) }
	fm[fnChargeDeep] = func(c *execCtx, v any) (any, error) { return v, c.charge(deepSize(v, c.remaining())) }
	// Templates never modify a value (the functions that would are
	// removed), so a copy is the value itself; copying would cost work
	// in proportion to the value's deep size.
	fm["deepCopy"] = func(v any) any { return v }
	fm["mustDeepCopy"] = func(v any) (any, error) {
		if v == nil {
			return nil, ferr("mustDeepCopy: cannot copy nil")
		}
		return v, nil
	}
	for k, v := range s.extra {
		if _, builtin := fm[k]; !builtin {
			fm[k] = v
		}
	}
	return fm
}

func truthy(v any) bool {
	if v == nil {
		return false
	}
	t, _ := template.IsTrue(v)
	return t
}

// pathError is a failed data lookup. Its message names only the path.
type pathError struct {
	path   string // the full path as written
	at     string // the prefix that is missing / not an object
	notObj bool
}

func (e *pathError) Error() string {
	if e.notObj {
		if e.at == e.path {
			return e.at + " is not an object"
		}
		return e.at + " is not an object (reading " + e.path + ")"
	}
	return e.path + " is missing"
}

// Is makes errors.Is(err, ErrMissing) true for a missing field.
func (e *pathError) Is(target error) bool { return target == ErrMissing && !e.notObj }

// lookup walks a dotted path through nested maps. It never mutates data.
func lookup(data map[string]any, path string, optional bool) (any, error) {
	var cur any = data
	rest := path
	end := 0 // path[:end] is what has been resolved so far
	for {
		seg, tail, more := strings.Cut(rest, ".")
		var (
			v  any
			ok bool
		)
		switch m := cur.(type) {
		case map[string]any:
			v, ok = m[seg]
		case map[string]string:
			v, ok = m[seg]
		case nil:
			ok = false
		default:
			rv := reflect.ValueOf(cur)
			if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
				if optional {
					return nil, nil
				}
				return nil, &pathError{path: path, at: path[:end-1], notObj: true}
			}
			e := rv.MapIndex(reflect.ValueOf(seg).Convert(rv.Type().Key()))
			if ok = e.IsValid(); ok {
				v = e.Interface()
			}
		}
		if !ok {
			if optional {
				return nil, nil
			}
			return nil, &pathError{path: path, at: path}
		}
		end += len(seg) + 1
		if !more {
			return v, nil
		}
		cur, rest = v, tail
	}
}

// digits keeps only the ASCII digits of v's text.
func digits(v any) string {
	s := toText(v)
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if s[j] >= '0' && s[j] <= '9' {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}

func hmacSHA256(key, msg any) []byte {
	m := hmac.New(sha256.New, []byte(toText(key)))
	m.Write([]byte(toText(msg)))
	return m.Sum(nil)
}

// dateLayouts are the string forms dateFormat and age accept.
var dateLayouts = [...]string{
	time.RFC3339Nano,
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02",
	"2006-01-02 15:04:05",
	"01/02/2006",
	"1/2/2006",
	"2006/01/02",
}

const dateFormatsHelp = "want RFC3339, YYYY-MM-DD, YYYY-MM-DD HH:mm:ss, MM/DD/YYYY or YYYY/MM/DD"

func parseDate(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case *time.Time:
		if x != nil {
			return *x, true
		}
	case string:
		s := strings.TrimSpace(x)
		for _, l := range dateLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// dateFormat formats v (a time.Time or a date string) with layout, which is
// either human tokens (YYYY MM DD HH mm ss) or a Go layout. nil and "" give "".
func dateFormat(layout string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return "", nil
	}
	t, ok := parseDate(v)
	if !ok {
		return "", ferr("dateFormat: value is not a date (" + describe(v) + "; " + dateFormatsHelp + ")")
	}
	return t.Format(goLayout(layout)), nil
}

// dateTokens maps the human date tokens dateFormat accepts to Go layout
// parts, longest first so YYYY wins over YY.
var dateTokens = [...]struct{ human, layout string }{
	{"YYYY", "2006"}, {"YY", "06"}, {"MM", "01"}, {"DD", "02"}, {"HH", "15"}, {"mm", "04"}, {"ss", "05"},
}

// goLayout converts human date tokens to a Go layout. Go layouts contain none
// of these tokens, so they pass through unchanged.
func goLayout(l string) string {
	if !strings.ContainsAny(l, "YMDHms") {
		return l
	}
	var b strings.Builder
next:
	for i := 0; i < len(l); {
		for _, t := range dateTokens {
			if strings.HasPrefix(l[i:], t.human) {
				b.WriteString(t.layout)
				i += len(t.human)
				continue next
			}
		}
		b.WriteByte(l[i])
		i++
	}
	return b.String()
}

// age is the number of whole years from the birth date v to now.
func age(v any, now time.Time) (int, error) {
	if v == nil {
		return 0, ferr("age: no value")
	}
	b, ok := parseDate(v)
	if !ok {
		return 0, ferr("age: value is not a date (" + describe(v) + "; " + dateFormatsHelp + ")")
	}
	now = now.In(b.Location())
	if now.Before(b) {
		return 0, ferr("age: date is in the future")
	}
	years := now.Year() - b.Year()
	if now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day()) {
		years--
	}
	return years, nil
}

// describe says what kind of value v is without showing it (values may be secrets).
func describe(v any) string {
	if s, ok := v.(string); ok {
		return "a string of " + itoa(len(s)) + " bytes"
	}
	return "a " + reflect.TypeOf(v).String()
}
