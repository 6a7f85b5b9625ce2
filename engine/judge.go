package engine

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/parse"
)

// judge decides what one try's answer means: captures, then the outcome.
// What the json captures would decode is reserved from mem first (see
// reserveCaptures) and given back once they are decoded.
func (p *Plan) judge(st *step, req *request, resp parse.Response, err error, data map[string]any, mem *memBudget) verdict {
	if err != nil {
		return unanswered(req, resp, err)
	}
	v := verdict{status: resp.Status, header: resp.Header}
	reserved, err := reserveCaptures(st, resp.Body, mem)
	if err != nil {
		v.outcome, v.reason, v.class, v.err = Error, err.Error(), ClassTooLarge, err
		return v
	}
	defer mem.give(reserved)
	doc := parse.NewDoc(resp, st.format)
	capErr := formatError(st, resp, doc)
	var firstCapErr error
	// a capture missing from an error page or an unreadable body is no news
	note := resp.Status >= 200 && resp.Status < 300 && capErr == nil
	v.captured, v.notes, firstCapErr = captureAll(st, doc, note, req.mask)
	if capErr == nil {
		capErr = firstCapErr
	}
	data["captured"] = v.captured
	if st.needsResponse {
		data["response"] = responseValue(doc)
	}
	switch {
	case resp.Status < 200 || resp.Status >= 300:
		judgeStatus(&v, resp, req.mask)
	case capErr != nil:
		v.outcome, v.reason, v.keys, v.class, v.err = Error, capErr.Error(), []string{"error_when"}, ClassCapture, capErr
	default:
		if !judgeConds(&v, st, data) {
			return v // a condition failed to evaluate: its error is the reason
		}
	}
	authorReason(&v, st, resp, capErr, data)
	return v
}

// unanswered is the verdict on a try that had no answer to judge: an error
// whose class (and retry keys) say why.
func unanswered(req *request, resp parse.Response, err error) verdict {
	v := verdict{outcome: Error, status: resp.Status, reason: fmt.Sprintf("%s %s: %v", req.method, req.shownURL(), err), err: err}
	var te *TimeoutError
	var ce *CanceledError
	var be *BodyTooLargeError
	switch {
	case errors.As(err, &te):
		v.class = ClassTimeout
		if te.Deadline == "" { // past a deadline, there is no time left to retry
			v.keys = []string{"timeout"}
		}
	case errors.As(err, &ce):
		v.class = ClassCanceled
	case errors.As(err, &be), errors.As(err, new(*MemoryBudgetError)):
		v.class = ClassTooLarge
	case errors.As(err, new(*AuthError)):
		v.class = ClassAuth
	case errors.As(err, new(*LimitError)):
		v.class = ClassLimit
	case isTLSError(err):
		v.keys, v.class = []string{"tls"}, ClassTLS
	case errors.Is(err, errTooManyRedirects):
		v.class = ClassStatus // the partner answered, with redirects without end
	case undecodable(err):
		v.class = ClassCapture // the partner answered, with a body that does not decode
	default:
		v.keys, v.class = []string{"connection"}, ClassConnection
	}
	return v
}

// undecodable reports whether err is an answer's body that its
// Content-Encoding (gzip, deflate) does not decode: the partner's answer,
// not a connection that failed.
func undecodable(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt)
}

// captureFactor bounds what decoding JSON costs in the units of the
// response memory budget (valueSize): a value decoded from n bytes of JSON
// text counts at most captureFactor*n bytes. The worst is an array of
// empty objects, [{},{},…]: 64 for every 3 bytes.
const captureFactor = 24

// reserveCaptures reserves from mem, before anything is decoded, what the
// step's json captures would decode from body — decodedSize of the JSON
// text each one selects (captureFactor per byte for objects and arrays) —
// and, when the step parses the answer as XML, the tree it parses into
// (parse.XMLTreeSize). The caller gives the bytes back once the answer is
// judged (holdCaptured then counts what the captures hold). Less than
// heldMin in all is not reserved; a reservation that does not fit is a
// MemoryBudgetError, and nothing is decoded or parsed.
func reserveCaptures(st *step, body []byte, mem *memBudget) (int64, error) {
	xml, err := reserveXML(st, body, mem)
	if err != nil {
		return 0, err
	}
	n, err := reserveJSON(st, body, mem)
	if err != nil {
		mem.give(xml)
		return 0, err
	}
	return xml + n, nil
}

// reserveXML reserves the XML tree a step that parses its answer as XML
// builds of body.
func reserveXML(st *step, body []byte, mem *memBudget) (int64, error) {
	if !st.parsesXML || len(body) == 0 {
		return 0, nil
	}
	est := parse.XMLTreeSize(body)
	if est < heldMin {
		return 0, nil
	}
	if !mem.take(est) {
		return 0, fmt.Errorf("an XML answer of %d bytes (counted as %d bytes parsed) not parsed: %w",
			len(body), est, &MemoryBudgetError{Budget: mem.max})
	}
	return est, nil
}

// reserveJSON reserves what the step's json captures decode of body.
func reserveJSON(st *step, body []byte, mem *memBudget) (int64, error) {
	if st.jsonCaptures == 0 || int64(len(body))*captureFactor*int64(st.jsonCaptures) < heldMin {
		return 0, nil // cannot reach heldMin: the common, small answer
	}
	// gjson reads a string without copying the text it selects; body is
	// not changed while text is in use, and text does not outlive this call
	text := unsafe.String(unsafe.SliceData(body), len(body))
	var raw, est int64
	for i := range st.captures {
		if path := st.captures[i].jsonPath; path != "" {
			r := gjson.Get(text, path).Raw
			raw += int64(len(r))
			est += decodedSize(r)
		}
	}
	if est < heldMin {
		return 0, nil
	}
	if !mem.take(est) {
		return 0, fmt.Errorf("captures of %d bytes of JSON text (counted as %d bytes decoded) not decoded: %w",
			raw, est, &MemoryBudgetError{Budget: mem.max})
	}
	return est, nil
}

// decodedSize bounds what decoding the JSON text r adds to the answer's
// own bytes (counted while it is decoded): an object or array
// captureFactor per byte; a string or another scalar, no more than the
// answer's bytes it is read from, nothing.
func decodedSize(r string) int64 {
	if r != "" && (r[0] == '{' || r[0] == '[') {
		return int64(len(r)) * captureFactor
	}
	return 0
}

// formatError tells why a 2xx answer with a body is not in the format the
// step declares (nil when it is, or when the step declares none).
func formatError(st *step, resp parse.Response, doc *parse.Doc) error {
	if resp.Status < 200 || resp.Status >= 300 || len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	switch st.format {
	case parse.JSON:
		if err := doc.JSONValid(); err != nil {
			return fmt.Errorf("%w (the step declares response.format: json)", err)
		}
	case parse.XML:
		if _, err := doc.XMLRoot(); err != nil {
			return fmt.Errorf("%w (the step declares response.format: xml)", err)
		}
	}
	return nil
}

// captureAll extracts the step's captures from doc (a default stands in for
// one not found), and returns them with the first capture that failed or
// was required and not found. With note set, a capture without a default
// that finds nothing gets a note saying what the answer holds instead,
// masked by m.
func captureAll(st *step, doc *parse.Doc, note bool, m *masker) (map[string]any, []string, error) {
	captured := make(map[string]any, len(st.captures))
	var capErr error
	var notes []string
	for i := range st.captures {
		c := &st.captures[i]
		x, found, err := c.ext.Extract(doc)
		switch {
		case err != nil:
			if capErr == nil {
				capErr = fmt.Errorf("capture %s: %w", c.name, err)
			}
		case !found && c.def != nil:
			x = c.def
		case !found:
			if c.required && capErr == nil {
				capErr = fmt.Errorf("capture %s: not found in the response (%s)", c.name, c.ext.Kind())
			}
			if note {
				if n := missNote(c, doc, m); n != "" {
					notes = append(notes, n)
				}
			}
		}
		captured[c.name] = x
	}
	return captured, notes, capErr
}

// judgeStatus judges an answer whose status is not 2xx: an error (auth for
// 401 and 407), or a failure when the partner said no (see partnerSaidNo).
func judgeStatus(v *verdict, resp parse.Response, m *masker) {
	v.outcome, v.reason, v.class = Error, httpReason(resp, m), ClassStatus
	if partnerSaidNo(resp.Status) {
		v.outcome = Failure
	} else if resp.Status == 401 || resp.Status == 407 {
		v.class = ClassAuth
	}
	code := strconv.Itoa(resp.Status)
	v.keys = []string{code, code[:1] + "xx"}
}

// judgeConds judges a 2xx answer whose captures all held by the step's
// error_when, then its failure_when: a success unless one holds. It
// returns false when a condition failed to evaluate (v is then that error).
func judgeConds(v *verdict, st *step, data map[string]any) bool {
	v.outcome = Success
	for _, r := range []struct {
		c   *cond.Program
		o   Outcome
		key string
	}{{st.errWhen, Error, "error_when"}, {st.failWhen, Failure, "failure_when"}} {
		if r.c == nil {
			continue
		}
		hit, err := r.c.Eval(data)
		if err != nil {
			v.outcome, v.reason, v.class, v.err = Error, err.Error(), ClassTemplate, err
			return false
		}
		if hit {
			v.outcome, v.reason, v.keys, v.class = r.o, r.key+" holds: "+r.c.Source(), []string{r.key}, ClassRejected
			return true
		}
	}
	return true
}

// authorReason applies the step's reason: template to an answer that is
// not a success (docs/format.md, Outcomes). It speaks for an answer the
// step judged — a 4xx the partner said no with, or a 2xx that failure_when
// or error_when judged: its text is the reason, unless it took nothing
// from the answer where it reads it (the captures it reads are empty) or,
// on a 4xx, reads nothing of it; then the engine's reason (the status and
// the partner's own words) follows it in parentheses. On any other answer
// (401, 407, 408, 429, 3xx, 5xx, a 2xx whose captures failed) the cause is
// never hidden: the template's text is used only when it took something
// from the answer (a SOAP fault's text in a 500), followed by the status
// or the capture error. An unanswered try never reaches here.
func authorReason(v *verdict, st *step, resp parse.Response, capErr error, data map[string]any) {
	if v.outcome == Success || st.reason == nil || resp.Status <= 0 {
		return
	}
	why, err := st.reason.Render(data)
	why = strings.TrimSpace(why)
	if err != nil || why == "" {
		return
	}
	ok2xx := resp.Status >= 200 && resp.Status < 300
	judged := (ok2xx && capErr == nil && v.class == ClassRejected) || (v.outcome == Failure && v.class == ClassStatus)
	drew := tookFromAnswer(st.reasonRefs, data)
	switch {
	case judged && (drew || (ok2xx && len(st.reasonRefs) == 0)):
		v.reason = why
	case judged:
		if lead := strings.TrimRight(why, " \t:;,.-–—"); lead != "" {
			v.reason = lead + " (" + v.reason + ")"
		}
	case drew && capErr != nil:
		v.reason = why + " (" + capErr.Error() + ")"
	case drew:
		v.reason = why + fmt.Sprintf(" (HTTP %d %s)", resp.Status, http.StatusText(resp.Status))
	}
}

// tookFromAnswer reports whether any of refs (paths under captured and
// response) holds a value that is not empty in data.
func tookFromAnswer(refs []string, data map[string]any) bool {
	for _, ref := range refs {
		var x any = data
		for _, k := range strings.Split(ref, ".") {
			m, ok := x.(map[string]any)
			if !ok {
				x = nil
				break
			}
			x = m[k]
		}
		switch x := x.(type) {
		case nil:
		case string:
			if strings.TrimSpace(x) != "" {
				return true
			}
		case []any:
			if len(x) > 0 {
				return true
			}
		case map[string]any:
			if len(x) > 0 {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// partnerSaidNo tells a 4xx that is an answer about the lead (failure) from
// one that means no answer was had (error): 401 and 407 (our credentials
// were refused), 408 (timeout) and 429 (rate limited).
func partnerSaidNo(status int) bool {
	switch status {
	case 401, 407, 408, 429:
		return false
	}
	return status >= 400 && status < 500
}

func httpReason(resp parse.Response, m *masker) string {
	reason := fmt.Sprintf("HTTP %d %s", resp.Status, http.StatusText(resp.Status))
	if snippet := bodySnippet(resp.Body, m); snippet != "" {
		reason += ": " + snippet
	}
	return reason
}

// bodySnippet is the start of an answer for a reason: its words, one space
// apart, masked, then cut to 200 bytes (masked before the cut, so the cut
// leaves no piece of a secret).
func bodySnippet(b []byte, m *masker) string {
	const shown, margin = 200, 4096 // margin: room for a secret across the cut
	var out strings.Builder
	space := false
	for len(b) > 0 && out.Len() < shown+margin {
		r, n := utf8.DecodeRune(b)
		if unicode.IsSpace(r) {
			space = out.Len() > 0
		} else {
			if space {
				out.WriteByte(' ')
				space = false
			}
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return m.clip(out.String(), shown)
}

func responseValue(doc *parse.Doc) map[string]any {
	r := doc.Response()
	headers := make(map[string]any, len(r.Header))
	for k, v := range r.Header {
		if len(v) > 0 {
			headers[strings.ToLower(k)] = v[0]
		}
	}
	body, err := doc.Value()
	if err != nil {
		body = string(r.Body)
	}
	return map[string]any{"status": r.Status, "headers": headers, "body": body}
}

// isTLSError tells a failed handshake or certificate check from other
// connection errors: retrying it does not help.
func isTLSError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		rh tls.RecordHeaderError
		ae tls.AlertError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
