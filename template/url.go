package template

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/template/parse"
)

// CompileOption changes how one template is compiled.
type CompileOption func(*compileConfig)

type compileConfig struct {
	allowHosts []string
	hostsSet   bool
	transient  bool
	document   bool
}

// Transient compiles a template apart from the Set's shared namespace, with
// a copy of the function table of its own that is dropped with the
// template. Use it for a template compiled while running (once per call,
// not once per file): the Set keeps every template compiled into it
// for as long as the Set lives, so compiling into it on every call would
// grow without a bound. Compiling apart costs a copy of the function
// table (tens of microseconds).
func Transient() CompileOption {
	return func(c *compileConfig) { c.transient = true }
}

// AllowHosts lets data other than settings (lead, vars, steps, captured,
// response, batch) write the scheme, host or port of a URL template, and
// lets such data decide ({{if}}, {{with}}, {{range}}) which literal
// scheme, host or port is written; both are otherwise compile errors.
// A value written into the host is escaped so it can only name a host
// (letters, digits, '-' and '.'), and every Render checks the rendered
// URL's scheme, host and port with CheckHost against hosts. It only
// matters in URL mode.
func AllowHosts(hosts []string) CompileOption {
	hosts = append([]string(nil), hosts...)
	return func(c *compileConfig) {
		c.allowHosts = hosts
		c.hostsSet = true
	}
}

// ErrHost is matched (errors.Is) by render errors of a URL template whose
// data would change, or is not allowed to choose, the URL's host.
var ErrHost = errors.New("url host not allowed")

// hostPattern is one parsed allow_hosts entry: the scheme, the host (or
// the suffix of a *.suffix wildcard) and the port a URL must have.
type hostPattern struct {
	scheme   string // "http" or "https"
	host     string // lower case, no trailing dot, no brackets
	wildcard bool   // host is a suffix: any name below it matches
	port     string // always set: the scheme's default when the entry has none
}

// CheckAllowedHost reports whether entry is a valid allow_hosts entry, and
// what is wrong with it if not. The syntax is [SCHEME://]HOST[:PORT]:
//
//	api.example.com              https on port 443
//	api.example.com:8443         https on port 8443
//	http://api.example.com       http on port 80
//	http://api.example.com:8080  http on port 8080
//	*.example.com                https on 443, any name below example.com
//	[::1]:9000                   an IPv6 address, https on 9000
//
// SCHEME is http or https (default https); PORT defaults to the scheme's
// (443 for https, 80 for http). An entry has no path, query, fragment or
// userinfo.
func CheckAllowedHost(entry string) error {
	_, err := parseHostPattern(entry)
	return err
}

func parseHostPattern(entry string) (hostPattern, error) {
	p := hostPattern{scheme: "https"}
	s := entry
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		p.scheme = strings.ToLower(scheme)
		if p.scheme != "http" && p.scheme != "https" {
			return p, errors.New("the scheme must be http or https")
		}
		s = strings.TrimSuffix(rest, "/")
	}
	if s == "" {
		return p, errors.New("no host")
	}
	if i := strings.IndexAny(s, "/?#@\\ \t\r\n"); i >= 0 {
		return p, errors.New("an entry is [http(s)://]host[:port], without path, query, fragment, userinfo or spaces")
	}
	host := s
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, ']') {
		host, p.port = s[:i], s[i+1:]
		n, err := strconv.Atoi(p.port)
		if err != nil || n < 1 || n > 65535 || p.port[0] == '0' || p.port[0] == '+' {
			return p, errors.New("the port must be a number from 1 to 65535")
		}
	}
	if p.port == "" {
		p.port = defaultPort(p.scheme)
	}
	if strings.HasPrefix(host, "[") {
		ip := strings.TrimSuffix(host[1:], "]")
		if !strings.HasSuffix(host, "]") || net.ParseIP(ip) == nil || !strings.Contains(ip, ":") {
			return p, errors.New("a bracketed host must be an IPv6 address")
		}
		p.host = normHost(ip)
		return p, nil
	}
	if strings.Contains(host, ":") {
		return p, errors.New("write an IPv6 address in brackets ([::1]:443)")
	}
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		p.wildcard, host = true, suffix
	}
	p.host = normHost(host)
	if p.host == "" {
		return p, errors.New("no host")
	}
	for i := 0; i < len(p.host); i++ {
		if c := p.host[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return p, errors.New("a host is letters, digits, '-' and '.' (a wildcard is *.suffix)")
		}
	}
	return p, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// match reports whether a URL with this lower-case scheme, normalised host
// and port (the scheme's default when it has none) is allowed by p.
func (p hostPattern) match(scheme, host, port string) bool {
	if scheme != p.scheme || port != p.port {
		return false
	}
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

// parsePatterns parses entries, dropping invalid ones (which then match
// nothing; loaders report them with CheckAllowedHost).
func parsePatterns(entries []string) []hostPattern {
	out := make([]hostPattern, 0, len(entries))
	for _, e := range entries {
		if p, err := parseHostPattern(e); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// CheckHost reports whether u's scheme, host and port are those of one of
// the allowed entries (see CheckAllowedHost for their syntax): an entry
// api.example.com lets u be https://api.example.com on port 443 only, not
// http and not another port. Names compare case-insensitively, ignoring a
// trailing dot; a wildcard *.example.com matches any host below
// example.com (not example.com itself); a URL without a port has its
// scheme's default. A URL with userinfo (user@host), without a host or
// with a scheme other than http and https is refused. Invalid entries
// match nothing. The error wraps ErrHost and does not show the URL.
func CheckHost(u *url.URL, allowed []string) error {
	return checkPatterns(u, parsePatterns(allowed), allowed)
}

func checkPatterns(u *url.URL, pats []hostPattern, allowed []string) error {
	if u == nil || u.Host == "" {
		return hostError("url has no host")
	}
	if u.User != nil {
		return hostError("url has userinfo (user@host)")
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	if port == "" {
		return hostError("url scheme is not http or https")
	}
	host := normHost(u.Hostname())
	for _, p := range pats {
		if p.match(scheme, host, port) {
			return nil
		}
	}
	return hostError("url's scheme, host or port is not one of the allowed hosts (" + strings.Join(allowed, ", ") +
		"; an entry without scheme or port means https on 443)")
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// hostErr is a host check failure; it is ErrHost for errors.Is.
type hostErr struct{ msg string }

func (e *hostErr) Error() string        { return e.msg }
func (e *hostErr) Is(target error) bool { return target == ErrHost }

func hostError(msg string) error { return &hostErr{msg: msg} }

// sameOrigin reports whether got has the scheme, userinfo and host of want.
func sameOrigin(got, want *url.URL) bool {
	return strings.EqualFold(got.Scheme, want.Scheme) &&
		strings.EqualFold(got.Host, want.Host) &&
		got.User.String() == want.User.String() &&
		got.Opaque == want.Opaque
}

// checkURL runs the host checks of a URL template on its rendered text out.
func (t *Template) checkURL(ctx context.Context, out string, data map[string]any) error {
	if t.trustedOnly != nil {
		// Data was written right after the base: it must not change the
		// origin the trusted parts alone give.
		base, err := t.trustedOnly.RenderContext(ctx, data)
		if err != nil {
			return err
		}
		want, werr := url.Parse(base)
		got, gerr := url.Parse(out)
		if werr == nil && (gerr != nil || !sameOrigin(got, want)) {
			return t.hostErr(hostError("data after the url's base would change its scheme, host or port"))
		}
	}
	if t.hostsSet {
		u, err := url.Parse(out)
		if err != nil {
			return t.hostErr(hostError("rendered url is not valid"))
		}
		if err := checkPatterns(u, t.hosts, t.allowHosts); err != nil {
			return t.hostErr(err)
		}
	}
	return nil
}

// ErrDotSegment is matched (errors.Is) by render errors of a URL template
// whose data makes a path segment that a server may read as "." or "..".
var ErrDotSegment = errors.New("url path has a dot segment")

// checkDotSegments refuses a rendered URL with a path segment that, once
// percent-decoded (repeatedly, as some servers and proxies do), is "." or
// ".." or holds one between '/' or '\' (a server that decodes %2F or
// treats '\' as a separator splits it), ignoring ";params" (which some
// servers strip before resolving dot segments) and trailing spaces (which
// Windows servers drop). A segment without '%' or '\' is as the file
// wrote it (data never writes a bare dot segment) and is left alone. The
// error does not show the URL.
func checkDotSegments(out string) error {
	u, err := url.Parse(out)
	if err != nil {
		return nil // not a URL: the caller refuses it
	}
	raw := u.EscapedPath()
	if u.Opaque != "" {
		raw = u.Opaque
	}
	for _, seg := range strings.Split(raw, "/") {
		if !strings.ContainsAny(seg, "%\\") {
			continue
		}
		for range 4 {
			d, err := url.PathUnescape(seg)
			if err != nil || d == seg {
				break
			}
			seg = d
		}
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '/' || r == '\\' }) {
			part, _, _ = strings.Cut(part, ";")
			if part = strings.TrimRight(part, " "); part == "." || part == ".." {
				return &dotErr{}
			}
		}
	}
	return nil
}

// dotErr is a dot segment made by data; it is ErrDotSegment for errors.Is.
type dotErr struct{}

func (*dotErr) Error() string {
	return `data makes a url path segment that servers read as "." or ".." once percent-decoded: refused (a value must not be "." or "..", nor contain "/.." or "\..")`
}
func (*dotErr) Is(target error) bool { return target == ErrDotSegment }

func (t *Template) hostErr(err error) error {
	return &renderError{msg: "template " + t.name + ": " + err.Error(), cause: err}
}

// trustedOnlyTree copies tree (already escaped) with every action escaped by
// fnURLStrict writing nothing instead: what the URL is without the data
// written right after its base.
func trustedOnlyTree(tree *parse.Tree) *parse.Tree {
	cp := tree.Copy()
	var walk func(l *parse.ListNode)
	walk = func(l *parse.ListNode) {
		if l == nil {
			return
		}
		for _, n := range l.Nodes {
			switch n := n.(type) {
			case *parse.ActionNode:
				cmds := n.Pipe.Cmds
				if len(cmds) == 0 {
					continue
				}
				last := cmds[len(cmds)-1]
				if id, ok := last.Args[0].(*parse.IdentifierNode); ok && len(last.Args) == 1 && id.Ident == fnURLStrict {
					id.Ident = fnEmpty
				}
			case *parse.IfNode:
				walk(n.List)
				walk(n.ElseList)
			case *parse.WithNode:
				walk(n.List)
				walk(n.ElseList)
			case *parse.RangeNode:
				walk(n.List)
				walk(n.ElseList)
			}
		}
	}
	walk(cp.Root)
	return cp
}
