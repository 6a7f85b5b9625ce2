package engine

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"time"
)

type stepKey struct{}

// StepName returns the name of the step a context belongs to, or "" outside
// a step: the contexts of a step's events (StepStart on), of its requests
// and of the lines logged in it carry it. A RoundTripper can read it from
// req.Context(), which is how `plumb test` serves each step its recorded
// responses; a log handler can name the step of a line with it.
func StepName(ctx context.Context) string {
	s, _ := ctx.Value(stepKey{}).(string)
	return s
}

// Exchange is one HTTP try as an observer sees it. Secret setting values are
// masked everywhere in it.
type Exchange struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	// Fallback is set for a try of a fallback request link.
	Fallback       bool        `json:"fallback,omitempty"`
	Method         string      `json:"method"`
	URL            string      `json:"url"`
	RequestHeader  http.Header `json:"request_header,omitempty"`
	RequestBody    string      `json:"request_body,omitempty"`
	Status         int         `json:"status,omitempty"`
	ResponseHeader http.Header `json:"response_header,omitempty"`
	ResponseBody   string      `json:"response_body,omitempty"`
	Err            string      `json:"error,omitempty"`
	// Class says why a try had no answer (timeout, connection, tls,
	// canceled…); empty when it had one.
	Class  Class  `json:"class,omitempty"`
	Timing Timing `json:"timing"`
	// Action is what the step's rules decided after this try (retry,
	// reauth, fail, fallback, ignore), with the rule's source; empty when
	// the try settled the step.
	Action string `json:"action,omitempty"`
}

// Timing breaks a try's duration down. Phases that did not happen (a reused
// connection has no DNS or connect) are zero.
type Timing struct {
	DNS       Duration `json:"dns_ms"`
	Connect   Duration `json:"connect_ms"`
	TLS       Duration `json:"tls_ms"`
	FirstByte Duration `json:"first_byte_ms"`
	Total     Duration `json:"total_ms"`
}

// tracer records connection phases of one try.
type tracer struct {
	start                         time.Time
	dnsStart, connStart, tlsStart time.Time
	dns, conn, tls, firstByte     time.Duration
}

func (t *tracer) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { t.dnsStart = time.Now() },
		DNSDone:              func(httptrace.DNSDoneInfo) { t.dns = time.Since(t.dnsStart) },
		ConnectStart:         func(_, _ string) { t.connStart = time.Now() },
		ConnectDone:          func(_, _ string, _ error) { t.conn = time.Since(t.connStart) },
		TLSHandshakeStart:    func() { t.tlsStart = time.Now() },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { t.tls = time.Since(t.tlsStart) },
		GotFirstResponseByte: func() { t.firstByte = time.Since(t.start) },
	}
}

func (t *tracer) timing() Timing {
	return Timing{DNS: Duration(t.dns), Connect: Duration(t.conn), TLS: Duration(t.tls), FirstByte: Duration(t.firstByte), Total: Duration(time.Since(t.start))}
}

// redactHeader masks secrets in h (see masker.header), with cred the
// headers signing set.
func redactHeader(h http.Header, m *masker, cred map[string]bool) http.Header {
	return m.header(h, cred)
}
