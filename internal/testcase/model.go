// Package testcase holds stored test cases of integrations: their model,
// the loader that finds and checks them, the runner that plays them against
// a loopback server serving recorded responses, and the reports (text,
// JSON, JUnit XML) `plumb test` prints.
//
// Test cases live under `tests:` in an integration file, or in a sibling
// file NAME.test.yaml next to NAME.yaml whose top-level keys are `tests:`
// and optionally `integration:` (a path relative to the test file). Every
// problem in them is reported as `file:line:col: message (hint)`.
//
// A case runs the whole integration for one lead through the real engine:
// requests are rendered, signed, sent over HTTP to a server on 127.0.0.1
// that answers with the case's recorded responses, and the answers are
// parsed, retried and judged exactly as in production. Only the clock is
// fake, so backoff waits take no time.
package testcase

import (
	"regexp"
	"time"

	"github.com/plumbhq/plumb/steps"
)

// Suite is the test cases written in one file, for one integration.
type Suite struct {
	// File is where the cases are written: the integration file itself
	// (inline tests:) or a .test.yaml file.
	File string
	// Integration is the path of the integration file the cases test.
	Integration string
	// In is the loaded integration.
	In    *steps.Integration
	Cases []*Case
	// steps lists the integration's step names in order.
	steps []string
}

// Case is one stored test case: a lead, settings, recorded responses and
// what must come of them.
type Case struct {
	Name        string `yaml:"name,required"`
	Description string `yaml:"description"`
	// Lead is the lead, a mapping; LeadFile names a JSON file holding it
	// instead (relative to the file the case is written in).
	Lead     Value  `yaml:"lead"`
	LeadFile string `yaml:"lead_file"`
	// Settings are setting values; base_url, when declared and not given,
	// is set to the test server's URL. Environment variables are not read.
	Settings Map[Value] `yaml:"settings"`
	// Now fixes the clock (RFC 3339) for template time helpers such as
	// age; default: the real time when the case starts.
	Now string `yaml:"now"`
	// Responses are the recorded answers, per step name or per route
	// ("POST /oauth/token" or "/path": any request to that path, whichever
	// step sends it; routes win over step names). A list is a sequence
	// served one per request; its last answer repeats.
	Responses Map[Sequence] `yaml:"responses"`
	// Webhook is an inbound delivery to the integration's receiver instead
	// of a lead (webhook.go): signed, checked, and run when accepted.
	Webhook *WebhookCase `yaml:"webhook"`
	Expect  Expect       `yaml:"expect"`
	Pos     steps.Pos    `yaml:"-"`

	lead map[string]any
	now  time.Time
}

// Sequence is the answers recorded for one step or route, in the order
// they are served. A single mapping is a sequence of one.
type Sequence []*Response

// DecodeValue implements steps.ValueDecoder.
func (s *Sequence) DecodeValue(v steps.Value, what string) steps.ErrorList {
	switch {
	case v.Kind() == steps.MappingValue:
		r := new(Response)
		*s = Sequence{r}
		return v.DecodeStrict(r, what)
	case v.Kind() != steps.ListValue || len(v.Items()) == 0:
		var errs steps.ErrorList
		errs.Add(v.Pos, "a response is a mapping such as { status: 200, body: {...} }; a list is a sequence", "expected a response or a list of responses, got %s", v.Describe())
		return errs
	}
	// decoded as []Response, not []*Response, so a null item is an error
	list := make([]Response, len(v.Items()))
	errs := v.DecodeStrict(&list, what)
	*s = make(Sequence, len(list))
	for i := range list {
		(*s)[i] = &list[i]
	}
	return errs
}

// Response is one recorded answer.
type Response struct {
	// Status defaults to 200.
	Status  int         `yaml:"status"`
	Headers Map[string] `yaml:"headers"`
	// Body is text as is, or a structured value sent as JSON (with
	// Content-Type application/json unless Headers set one). BodyFile
	// names a file holding the body instead.
	Body     Value  `yaml:"body"`
	BodyFile string `yaml:"body_file"`
	// Delay holds the answer back (real time), for timeout cases.
	Delay time.Duration `yaml:"delay"`
	// Error answers with no HTTP response at all: "connection" closes the
	// connection, "timeout" never answers (the step's timeout fires).
	Error string    `yaml:"error"`
	Pos   steps.Pos `yaml:"-"`

	body        []byte
	contentType string
}

// Expect is what must come of a case. Every key is optional; a case with
// an empty expect passes when every request found a recorded response.
type Expect struct {
	// Outcome is how the flow must end (see [steps.Outcomes]).
	Outcome string `yaml:"outcome"`
	// Step names the step that decided a failure or error.
	Step string `yaml:"step"`
	// Reason must contain this text; ReasonMatches is a regular
	// expression it must match.
	Reason        string `yaml:"reason"`
	ReasonMatches string `yaml:"reason_matches"`
	// Steps are outcomes per step name.
	Steps Map[string] `yaml:"steps"`
	// Captured are captured values per step: each listed value must equal
	// (objects: contain) the one captured.
	Captured Map[Map[Value]] `yaml:"captured"`
	// Lead must be contained in the final lead (appended fields included);
	// a dotted key such as blacklist.reason reads a nested field.
	Lead Value `yaml:"lead"`
	// Requests are matchers for the requests each step (or route) sent, in
	// order; there must be exactly as many requests as matchers.
	Requests Map[[]*RequestMatch] `yaml:"requests"`
	// Attempts are tries per step (retries included).
	Attempts Map[int] `yaml:"attempts"`
	// Status is the webhook receiver's answer to the case's delivery
	// (default 200; 401, 413, 415 or 400 when it must be refused).
	Status int       `yaml:"status"`
	Pos    steps.Pos `yaml:"-"`

	reasonRE *regexp.Regexp
}

// RequestMatch checks one request a step sent. Every key is optional.
type RequestMatch struct {
	Method steps.String `yaml:"method"`
	// URL is the whole URL; URLMatches a regular expression it must match;
	// Path its path.
	URL        string       `yaml:"url"`
	URLMatches string       `yaml:"url_matches"`
	Path       steps.String `yaml:"path"`
	// Query values that must be present (others may be too).
	Query Map[string] `yaml:"query"`
	// Headers that must be present with these values (names are
	// case-insensitive; others may be present too).
	Headers Map[string] `yaml:"headers"`
	// Body is a JSON value the request body must contain (objects: a
	// subset of keys; lists and scalars: equal).
	Body Value `yaml:"body"`
	// Form values the urlencoded body must hold.
	Form Map[string] `yaml:"form"`
	// BodyContains is text the body must contain.
	BodyContains string    `yaml:"body_contains"`
	Pos          steps.Pos `yaml:"-"`

	urlRE *regexp.Regexp
}

// testFile is the top level of a NAME.test.yaml file.
type testFile struct {
	// Integration is the integration file, relative to the test file
	// (default: NAME.yaml next to NAME.test.yaml).
	Integration steps.String `yaml:"integration"`
	Tests       steps.Value  `yaml:"tests,required"`
	Pos         steps.Pos    `yaml:"-"`
}
