package serve

// The front of the service: every request passes here before any route.
// It refuses paths that are not canonical, sends webhook deliveries to
// their receivers, refuses a non-loopback Host when the API has no tokens
// (DNS rebinding), and puts the console beside the API.

import (
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/internal/console"
	"github.com/plumbhq/plumb/steps"
)

// Error codes of requests refused at the front, besides the API's.
const (
	CodeBadPath             = "non_canonical_path"
	CodeForbiddenHost       = "forbidden_host"
	CodeTooManyAuthFailures = "too_many_auth_failures"
)

// front is the service's handler: api is the API's routes, hooks the
// webhook receivers' route, con the console (nil when off).
func (s *Server) front(api, hooks, con http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if clean, ok := canonicalPath(r); !ok {
			s.refuse(w, r, http.StatusBadRequest, CodeBadPath,
				"the path is not canonical (a . or .. segment, an empty segment or an encoded /); send "+clean)
			return
		}
		// Deliveries are authenticated by their signature, not by where
		// they come from: a partner reaches them through a tunnel or a
		// proxy under a public name. The API's own routes are never a
		// hook's (steps refuses them), so they skip the search.
		if !steps.ReservedPath(r.URL.Path) {
			if e, _ := s.hookAt(r.URL.Path); e != nil {
				hooks.ServeHTTP(w, r)
				return
			}
		}
		if s.apiTokens.empty() && !loopbackHost(r.Host) {
			s.refuse(w, r, http.StatusForbidden, CodeForbiddenHost,
				"without API tokens plumb serve answers only to a loopback host name (localhost, 127.0.0.1, [::1]); a web page reaching it under another name is a DNS-rebinding attempt")
			return
		}
		if con != nil && (r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, console.Prefix)) {
			setRoute(r, "console")
			if !s.consoleTokens.empty() && s.throttled(w, r) {
				return
			}
			if r.URL.Path == "/console" {
				http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
				return
			}
			con.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// refuse answers a request refused at the front, counted as the routes'
// answers are; its access line is a warning with the code.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.metrics.requests.WithLabelValues("(refused)", strconv.Itoa(status)).Inc()
	if a := accessOf(r.Context()); a != nil {
		a.route, a.code = "(refused)", code
	}
	writeError(w, status, code, msg)
}

// canonicalPath reports whether r's path is canonical, and the canonical
// form: no . or .. segment, no empty segment (//), no encoded / or \ (which
// would make one segment here and two in a proxy, or the reverse). Such
// paths never come from a client building URLs from the routes; they come
// from someone probing how two layers split a path. They are refused, not
// redirected: a redirect would be followed by GET, losing a POST's body,
// and would still route the original bytes through whatever sits in front.
func canonicalPath(r *http.Request) (string, bool) {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return "/", false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return clean, false
	}
	if strings.Contains(p, `\`) || strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f") {
		return clean, false
	}
	return clean, true
}

// loopbackHost reports whether a Host header names the loopback interface:
// localhost or a loopback address (127.0.0.0/8, ::1), with or without a
// port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
