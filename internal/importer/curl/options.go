package curl

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/internal/importer"
)

// option is one curl option: whether it takes an argument and what it
// does with it.
type option struct {
	arg   bool
	apply func(c *command, v string) error
}

// ignored options change only what curl prints or how it connects;
// the note, when set, is written into the file for the author.
func ignore(arg bool, note string) option {
	return option{arg: arg, apply: func(c *command, _ string) error {
		if note != "" && !containsNote(c.notes, note) {
			c.notes = append(c.notes, note)
		}
		return nil
	}}
}

func refuse(arg bool, msg, hint string) option {
	return option{arg: arg, apply: func(*command, string) error { return importer.Errorf(hint, "%s", msg) }}
}

func containsNote(notes []string, n string) bool {
	for _, x := range notes {
		if x == n {
			return true
		}
	}
	return false
}

var (
	data = option{true, func(c *command, v string) error {
		v, err := c.dataArg(v, true)
		c.data = append(c.data, v)
		return err
	}}
	dataBinary = option{true, func(c *command, v string) error {
		v, err := c.dataArg(v, false)
		c.data = append(c.data, v)
		return err
	}}
	dataRaw = option{true, func(c *command, v string) error { c.data = append(c.data, v); return nil }}
	header  = option{true, func(c *command, v string) error { return c.header(v) }}
	form    = option{true, func(c *command, v string) error { return c.formArg(v, true) }}
	user    = option{true, func(c *command, v string) error { c.user = &v; return nil }}
	tlsNote = ignore(true, "TODO(import): the line names TLS files (--cert/--key/--cacert): set http.tls (docs/format.md, Connections)")
)

// long are curl's long options plumb understands, by name.
var long = map[string]option{
	"request": {true, func(c *command, v string) error { c.method = v; return nil }},
	"header":  header,
	"data":    data, "data-ascii": data, "data-binary": dataBinary, "data-raw": dataRaw,
	"data-urlencode": {true, func(c *command, v string) error { return c.urlencoded(v) }},
	"json": {true, func(c *command, v string) error {
		v, err := c.dataArg(v, false)
		c.json = append(c.json, v)
		return err
	}},
	"form":        form,
	"form-string": {true, func(c *command, v string) error { return c.formArg(v, false) }},
	"user":        user,
	"user-agent":  {true, func(c *command, v string) error { return c.header("User-Agent: " + v) }},
	"referer": {true, func(c *command, v string) error {
		return c.header("Referer: " + strings.TrimSuffix(strings.TrimSuffix(v, ";auto"), "auto"))
	}},
	"cookie": {true, func(c *command, v string) error {
		if !strings.Contains(v, "=") {
			c.notes = append(c.notes, "TODO(import): the line reads cookies from a file (-b "+v+"); add a Cookie header if the partner needs one")
			return nil
		}
		return c.header("Cookie: " + v)
	}},
	"get":           {false, func(c *command, _ string) error { c.get = true; return nil }},
	"head":          {false, func(c *command, _ string) error { c.head = true; return nil }},
	"url":           {true, func(c *command, v string) error { c.urls = append(c.urls, v); return nil }},
	"oauth2-bearer": {true, func(c *command, v string) error { c.bearer = v; return nil }},
	"max-time": {true, func(c *command, v string) error {
		if n := atoiOr(strings.SplitN(v, ".", 2)[0], 0); n > 0 {
			c.timeout = strings.TrimSpace(strings.SplitN(v, ".", 2)[0]) + "s"
		}
		return nil
	}},
	"retry":      {true, func(c *command, v string) error { c.retries = atoiOr(v, 0); return nil }},
	"compressed": ignore(false, ""), // plumb asks for gzip answers by default
	"insecure":   ignore(false, "TODO(import): the line skips TLS verification (-k); plumb verifies certificates (http.tls.insecure_skip_verify is for tests only)"),
	"location":   ignore(false, "the line follows redirects (-L); plumb follows them to the same origin (follow_redirects)"),
	"basic":      ignore(false, ""),
	"proxy":      ignore(true, "TODO(import): the line goes through a proxy (-x); plumb uses HTTPS_PROXY/HTTP_PROXY from the environment"),
	"proxy-user": ignore(true, ""),
	"cacert":     tlsNote, "cert": tlsNote, "key": tlsNote, "capath": tlsNote, "cert-type": ignore(true, ""), "key-type": ignore(true, ""),
	"digest":        refuse(false, "--digest: plumb does not speak HTTP digest authentication", "use the partner's API key or basic auth if it offers one"),
	"ntlm":          refuse(false, "--ntlm: plumb does not speak NTLM authentication", "use the partner's API key if it offers one"),
	"negotiate":     refuse(false, "--negotiate: plumb does not speak SPNEGO authentication", "use the partner's API key if it offers one"),
	"aws-sigv4":     refuse(true, "--aws-sigv4: plumb does not sign AWS requests", "sign with an hmac auth section or a custom auth scheme"),
	"upload-file":   refuse(true, "-T/--upload-file: plumb does not upload files", "send the content as a body: -d '…'"),
	"config":        refuse(true, "-K/--config: plumb does not read curl config files", "write the options on the line"),
	"next":          refuse(false, "-:/--next: the line sends several requests", "import one request at a time"),
	"variable":      refuse(true, "--variable: curl variables are not supported", "write the values on the line, or use $ENVIRONMENT variables"),
	"expand-data":   refuse(true, "--expand-data: curl variables are not supported", "write the values on the line, or use $ENVIRONMENT variables"),
	"expand-url":    refuse(true, "--expand-url: curl variables are not supported", "write the values on the line, or use $ENVIRONMENT variables"),
	"expand-header": refuse(true, "--expand-header: curl variables are not supported", "write the values on the line, or use $ENVIRONMENT variables"),
}

// quiet options only change curl's own output or connection details.
var quiet = map[string]bool{
	"silent": false, "show-error": false, "verbose": false, "include": false, "fail": false,
	"fail-with-body": false, "progress-bar": false, "no-progress-meter": false, "no-buffer": false,
	"http1.0": false, "http1.1": false, "http2": false, "http2-prior-knowledge": false, "http3": false,
	"tlsv1": false, "tlsv1.0": false, "tlsv1.1": false, "tlsv1.2": false, "tlsv1.3": false,
	"globoff": false, "netrc": false, "raw": false, "tr-encoding": false, "path-as-is": false,
	"ipv4": false, "ipv6": false, "disable": false, "retry-connrefused": false, "retry-all-errors": false,
	"parallel": false, "no-keepalive": false, "tcp-nodelay": false, "styled-output": false, "remote-name": false,
	"remote-header-name": false, "create-dirs": false, "ssl-reqd": false, "location-trusted": false,
	"output": true, "write-out": true, "dump-header": true, "trace": true, "trace-ascii": true,
	"stderr": true, "cookie-jar": true, "max-redirs": true, "limit-rate": true, "connect-timeout": true,
	"retry-delay": true, "retry-max-time": true, "resolve": true, "connect-to": true, "interface": true,
	"proto": true, "proto-redir": true, "speed-limit": true, "speed-time": true, "keepalive-time": true,
	"ciphers": true, "tls-max": true, "dns-servers": true, "local-port": true, "range": true,
	"output-dir": true, "trace-config": true, "parallel-max": true, "rate": true,
}

// short maps curl's one-letter options to long ones.
var short = map[byte]string{
	'X': "request", 'H': "header", 'd': "data", 'F': "form", 'u': "user", 'A': "user-agent",
	'e': "referer", 'b': "cookie", 'G': "get", 'I': "head", 'm': "max-time", 'k': "insecure",
	'L': "location", 'x': "proxy", 'U': "proxy-user", 'E': "cert", 'T': "upload-file", 'K': "config",
	':': "next", 's': "silent", 'S': "show-error", 'v': "verbose", 'i': "include", 'f': "fail",
	'#': "progress-bar", 'N': "no-buffer", 'g': "globoff", 'n': "netrc", '0': "http1.0", '4': "ipv4",
	'6': "ipv6", 'q': "disable", 'Z': "parallel", 'O': "remote-name", 'J': "remote-header-name",
	'o': "output", 'w': "write-out", 'D': "dump-header", 'c': "cookie-jar", 'Y': "speed-limit",
	'y': "speed-time", 'r': "range", 'z': "time-cond",
}

func lookup(name string) (option, bool) {
	if o, ok := long[name]; ok {
		return o, true
	}
	if arg, ok := quiet[name]; ok {
		return ignore(arg, ""), true
	}
	if name == "time-cond" {
		return ignore(true, ""), true
	}
	return option{}, false
}

// parse reads the words after curl.
func (c *command) parse(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func(name string) (string, error) {
			if i+1 >= len(args) {
				return "", importer.Errorf("give it a value or remove it", "curl option %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "--":
			c.urls = append(c.urls, args[i+1:]...)
			return nil
		case strings.HasPrefix(a, "--"):
			if err := c.longOption(a, next); err != nil {
				return err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			if err := c.shortOptions(a, next); err != nil {
				return err
			}
		default:
			c.urls = append(c.urls, a)
		}
	}
	return nil
}

func (c *command) longOption(a string, next func(string) (string, error)) error {
	name, val, hasVal := strings.Cut(a[2:], "=")
	o, ok := lookup(name)
	if !ok && strings.HasPrefix(name, "no-") {
		if o, ok = lookup(name[3:]); ok && !o.arg {
			return nil // --no-FLAG turns a flag off
		}
	}
	if !ok {
		return importer.Errorf("remove it from the line; plumb import reads the request options (-X -H -d --data-* --json -F -u -G -A -e -b …)", "unknown curl option %s", "--"+name)
	}
	if o.arg && !hasVal {
		v, err := next("--" + name)
		if err != nil {
			return err
		}
		val = v
	}
	return o.apply(c, val)
}

func (c *command) shortOptions(a string, next func(string) (string, error)) error {
	for j := 1; j < len(a); j++ {
		name, ok := short[a[j]]
		if !ok {
			return importer.Errorf("remove it from the line; plumb import reads the request options (-X -H -d -F -u -G -A -e -b …)", "unknown curl option -%c", a[j])
		}
		o, _ := lookup(name)
		if !o.arg {
			if err := o.apply(c, ""); err != nil {
				return err
			}
			continue
		}
		val := a[j+1:]
		if val == "" {
			v, err := next("-" + string(a[j]))
			if err != nil {
				return err
			}
			val = v
		}
		return o.apply(c, val)
	}
	return nil
}

// header reads -H "Name: value" ("Name;" sends an empty value; "Name:"
// removes a header curl would send, which plumb does not send anyway).
func (c *command) header(v string) error {
	if strings.HasPrefix(v, "@") {
		return importer.Errorf("write the headers on the line: -H 'Name: value'", "-H %s reads headers from a file", v)
	}
	name, val, ok := strings.Cut(v, ":")
	if !ok {
		if n, found := strings.CutSuffix(v, ";"); found {
			name, val, ok = n, "", true
		}
	}
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return importer.Errorf("write it as -H 'Name: value'", "-H %s… is not a header (no colon)", clip(v))
	}
	val = strings.TrimSpace(val)
	if val == "" && !strings.HasSuffix(v, ";") {
		return nil
	}
	switch strings.ToLower(name) {
	case "content-type":
		c.explicitCT = true
	case "accept":
		c.explicitAccept = true
	}
	c.headers = append(c.headers, importer.KV{Key: name, Value: val})
	return nil
}

// dataArg reads a -d value: @FILE is the file's content (-d strips its
// line breaks, --data-binary keeps them).
func (c *command) dataArg(v string, strip bool) (string, error) {
	if !strings.HasPrefix(v, "@") {
		return v, nil
	}
	b, err := c.read(v[1:])
	if err != nil {
		return "", err
	}
	s := string(b)
	if strip {
		s = strings.NewReplacer("\r", "", "\n", "").Replace(s)
	}
	return s, importer.CheckText(v, s)
}

func (c *command) read(name string) ([]byte, error) {
	if name == "-" || c.readFile == nil {
		return nil, importer.Errorf("paste the file's content into the line: -d '{…}'", "the curl line reads its body from %s, which plumb import cannot read", name)
	}
	b, err := c.readFile(name)
	if err != nil {
		return nil, importer.Errorf("run plumb import where the file is, or paste its content into the line", "the curl line reads its body from %s: %v", name, err)
	}
	return b, nil
}

// urlencoded reads --data-urlencode: content, =content, name=content,
// @file, name@file.
func (c *command) urlencoded(v string) error {
	name, content := "", v
	if i := strings.IndexAny(v, "=@"); i >= 0 {
		name, content = v[:i], v[i+1:]
		if v[i] == '@' {
			b, err := c.read(content)
			if err != nil {
				return err
			}
			content = string(b)
		}
	}
	enc := url.QueryEscape(content)
	if name != "" {
		enc = name + "=" + enc
	}
	c.data = append(c.data, enc)
	return nil
}

// formArg reads -F name=value (a file, @ or <, cannot be sent).
func (c *command) formArg(v string, files bool) error {
	name, val, ok := strings.Cut(v, "=")
	if !ok {
		return importer.Errorf("write it as -F name=value", "-F %s… is not a form field (no =)", clip(v))
	}
	if files && (strings.HasPrefix(val, "@") || strings.HasPrefix(val, "<")) {
		return importer.Errorf("plumb sends form fields, not files: send the content as a field or body", "-F %s uploads a file", name)
	}
	if files {
		val, _, _ = strings.Cut(val, ";type=")
	}
	c.form = append(c.form, importer.KV{Key: name, Value: val})
	return nil
}

// clip is the start of a value an error may show: its first word, at most
// 12 characters (the rest may be a credential).
func clip(v string) string {
	w, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	if r := []rune(w); len(r) > 12 {
		w = string(r[:12])
	}
	return strconv.Quote(w)
}
