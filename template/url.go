package template

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"text/template/parse"
)

// CompileOption changes how one template is compiled.
type CompileOption func(*compileConfig)

type compileConfig struct {
	allowHosts []string
	hostsSet   bool
}

// AllowHosts lets data other than settings (lead, vars, steps, captured,
// response, batch) write the scheme, host or port of a URL template, which
// is otherwise a compile error. Such a value is escaped so it can only name
// a host (letters, digits, '-' and '.'), and every Render checks the
// rendered URL's host with CheckHost against hosts. It only matters in URL
// mode.
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

// CheckHost reports whether u's host is one of allowed. An entry is a host
// name or IP ("api.example.com"), optionally with a port
// ("api.example.com:8443"; without one any port matches), or a wildcard
// "*.example.com" matching any host below example.com (not example.com
// itself). Names compare case-insensitively, ignoring a trailing dot; a URL
// without a port has its scheme's default port (80 for http, 443 for https).
// A URL with userinfo (user@host) or without a host is refused. The error
// wraps ErrHost and does not show the host.
func CheckHost(u *url.URL, allowed []string) error {
	if u == nil || u.Host == "" {
		return hostError("url has no host")
	}
	if u.User != nil {
		return hostError("url has userinfo (user@host)")
	}
	host := normHost(u.Hostname())
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	for _, a := range allowed {
		ah, ap := a, ""
		if h, p, err := net.SplitHostPort(a); err == nil {
			ah, ap = h, p
		}
		if ap != "" && ap != port {
			continue
		}
		ah = normHost(ah)
		if suffix, ok := strings.CutPrefix(ah, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return nil
			}
			continue
		}
		if ah != "" && host == ah {
			return nil
		}
	}
	return hostError("url host is not one of the allowed hosts (" + strings.Join(allowed, ", ") + ")")
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
func (t *Template) checkURL(out string, data map[string]any) error {
	if t.trustedOnly != nil {
		// Data was written right after the base: it must not change the
		// origin the trusted parts alone give.
		base, err := t.trustedOnly.Render(data)
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
		if err := CheckHost(u, t.allowHosts); err != nil {
			return t.hostErr(err)
		}
	}
	return nil
}

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
