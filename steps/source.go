package steps

import (
	"strings"
	"time"
)

// Source pulls records from an API, page by page (plumb sync). Its request
// is described like a step's (request, auth, timeout, deadline, retry,
// response, capture, outcome) and may read two more roots: state (the
// saved sync state, e.g. state.cursor) and page (the pagination values of
// the page being fetched). Each record then runs through the
// integration's steps as the lead.
type Source struct {
	Step `yaml:",inline"`
	// Records says where the records are in a page: a gjson path to an
	// array (json) or an XPath selecting one node per record (xpath).
	// Without it the body is a JSON array of records.
	Records *Records `yaml:"records"`
	// Paginate says how to get the next page; without it the source is one
	// page.
	Paginate *Paginate `yaml:"paginate"`
	// StopWhen is a condition over captured, response, page and state that
	// ends the sync after the page it holds for (e.g.
	// captured.has_more == false).
	StopWhen String `yaml:"stop_when"`
	// MaxPages bounds the pages of one sync (default 10000); the next sync
	// goes on from where this one stopped.
	MaxPages int `yaml:"max_pages"`
	// Incremental makes a sync start where the last one ended.
	Incremental *Incremental `yaml:"incremental"`
	// Rate is a client-side budget for page requests, e.g. 5/s, 100/m,
	// 1/2s.
	Rate String `yaml:"rate"`
	// Key is the record field (dotted) that identifies a record in the
	// retry list (default: the whole record).
	Key string `yaml:"key"`
	// Schedule makes plumb serve run the sync on its own, at cron times
	// or every interval (plumb sync ignores it).
	Schedule *Schedule `yaml:"schedule"`
	// Pos is where the source: section starts.
	Pos Pos `yaml:"-"`
}

// Records selects the records of a page; exactly one of JSON and XPath is
// set.
type Records struct {
	// JSON is the gjson path to the array of records (e.g. data.leads).
	JSON string `yaml:"json"`
	// XPath selects one node per record (its attributes and child
	// elements become the record's fields).
	XPath string `yaml:"xpath"`
	Pos   Pos    `yaml:"-"`
}

// Locator reads one value of a page: a gjson path, an XPath or a response
// header; exactly one is set.
type Locator struct {
	JSON   string `yaml:"json"`
	XPath  string `yaml:"xpath"`
	Header string `yaml:"header"`
	Pos    Pos    `yaml:"-"`
}

// Paginate is the pagination of a source.
type Paginate struct {
	// Type is how the next page is found (see [PaginateTypes]).
	Type String `yaml:"type,required"`
	// Start is the first page number (page, default 1) or offset (offset,
	// default 0).
	Start *int `yaml:"start"`
	// Size is the page size the request asks for (page.size, page.limit);
	// offsets advance by it.
	Size int `yaml:"size"`
	// Cursor reads the next cursor from a page (cursor).
	Cursor *Locator `yaml:"cursor"`
	// Next reads the next page's URL from a page (next_url).
	Next *Locator `yaml:"next"`
	Pos  Pos      `yaml:"-"`
}

// PageFields lists the page.* values a source's request and stop_when
// read under pagination p (none without paginate:); package source's pagers
// set exactly these.
func PageFields(p *Paginate) []string {
	if p == nil {
		return nil
	}
	switch PaginateType(p.Type.Value) {
	case PaginatePage:
		if p.Size > 0 {
			return []string{"number", "size"}
		}
		return []string{"number"}
	case PaginateOffset:
		return []string{"offset", "limit"}
	case PaginateCursor:
		return []string{"cursor"}
	}
	return nil
}

// StateFields lists the state.* values a source's request and stop_when
// read: the incremental cursor ("" without incremental:).
var StateFields = []string{"cursor"}

// Incremental is the incremental sync of a source.
type Incremental struct {
	// CursorField is the record field (dotted) whose highest value is
	// saved and read by the next sync as state.cursor.
	CursorField string `yaml:"cursor_field,required"`
	// Start is state.cursor of the first sync.
	Start string `yaml:"start"`
	// Lookback is taken off a timestamp cursor (seconds off a number)
	// before the next sync reads it, to catch late writes.
	Lookback time.Duration `yaml:"lookback"`
	Pos      Pos           `yaml:"-"`
}

// Schedule is when plumb serve runs a source's sync: at the times of a
// cron expression in a time zone, or every interval; exactly one of cron
// and every is set. One instance of a cluster runs it at a time.
type Schedule struct {
	// Cron is a five-field cron expression (minute hour day-of-month
	// month day-of-week, e.g. "0 2 * * *" for 02:00 every night) or a
	// descriptor (@hourly, @daily, @weekly, @monthly, @yearly), read in
	// timezone.
	Cron String `yaml:"cron"`
	// Timezone is the IANA time zone cron's times are in, e.g.
	// America/New_York (default UTC). A time that a daylight-saving
	// change skips runs at the first minute after the change; a time it
	// repeats runs once.
	Timezone String `yaml:"timezone"`
	// Every runs a sync this long after the last one started (at least
	// 1s, e.g. 6h); the first runs when plumb serve starts.
	Every time.Duration `yaml:"every"`
	// Jitter delays each run by a random time up to it (default none;
	// less than every), so that many sources do not start together.
	Jitter time.Duration `yaml:"jitter"`
	// Missed is what plumb serve does about runs that fell while it was
	// down (see [ScheduleMisses]).
	Missed String `yaml:"missed"`
	Pos    Pos    `yaml:"-"`
}

// MinScheduleEvery is the shortest schedule.every.
const MinScheduleEvery = time.Second

// validate checks a schedule (the cron expression and the time zone are
// compiled by the engine, which reports them).
func (s *Schedule) validate(errs *ErrorList) {
	if s == nil {
		return
	}
	cron, every := s.Cron.IsSet(), s.Every != 0
	switch {
	case cron == every:
		errs.Add(s.Pos, `e.g. schedule: { cron: "0 2 * * *", timezone: America/New_York } or schedule: { every: 6h }`, "source: schedule needs exactly one of cron or every")
	case every && s.Every < MinScheduleEvery:
		errs.Add(s.Pos, "", "source: schedule: every must be at least %s, got %s", MinScheduleEvery, s.Every)
	case every && s.Timezone.IsSet():
		errs.Add(s.Timezone.Pos, "an interval is the same in every zone", "source: schedule: timezone applies to cron")
	}
	if s.Jitter < 0 {
		errs.Add(s.Pos, "", "source: schedule: jitter must not be negative")
	}
	if every && s.Jitter >= s.Every && s.Every >= MinScheduleEvery {
		errs.Add(s.Pos, "", "source: schedule: jitter (%s) must be less than every (%s)", s.Jitter, s.Every)
	}
	if m := ScheduleMissed(s.Missed.Value); !ScheduleMisses.Valid(m) {
		errs.Add(s.Missed.Pos, ScheduleMisses.Hint(), "source: schedule: unknown missed %q", m)
	}
}

// DefaultMaxPages bounds a sync when max_pages is not given.
const DefaultMaxPages = 10000

// validate checks the source: section (nil: none).
func (s *Source) validate(errs *ErrorList) {
	if s == nil {
		return
	}
	st := &s.Step
	for _, bad := range []struct {
		set  bool
		name string
	}{
		{st.Parallel != nil, "parallel"}, {st.FailFast, "fail_fast"}, {st.When.IsSet(), "when"},
		{st.Batch != nil, "batch"}, {st.Cache != nil, "cache"}, {st.Fallback != nil, "fallback"},
		{st.Append != nil, "append"}, {st.OnError != "", "on_error"}, {st.Variants != nil, "variants"},
	} {
		if bad.set {
			errs.Add(s.Pos, "a source fetches pages; records go through steps:, which may use it", "source: %s does not apply to a source", bad.name)
		}
	}
	st.validate(errs)
	if s.Records != nil && (s.Records.JSON == "") == (s.Records.XPath == "") {
		errs.Add(s.Records.Pos, "e.g. records: { json: data.leads } or records: { xpath: //Lead }", "source: records needs exactly one of json or xpath")
	}
	if s.MaxPages < 0 {
		errs.Add(s.Pos, "", "source: max_pages must not be negative")
	}
	if s.Rate.IsSet() {
		if _, _, err := ParseRate(s.Rate.Value); err != nil {
			errs.Add(s.Rate.Pos, "e.g. 5/s, 100/m, 1/2s", "source: rate: %v", err)
		}
	}
	s.Schedule.validate(errs)
	if s.Key != "" && !fieldRE.MatchString(s.Key) {
		errs.Add(s.Pos, "a record field name such as id or lead.id", "source: key %q is not a field name", s.Key)
	}
	if inc := s.Incremental; inc != nil {
		if !fieldRE.MatchString(inc.CursorField) {
			errs.Add(inc.Pos, "a record field name such as updated_at", "source: incremental: cursor_field %q is not a field name", inc.CursorField)
		}
		if inc.Lookback < 0 {
			errs.Add(inc.Pos, "", "source: incremental: lookback must not be negative")
		}
	}
	p := s.Paginate
	if p == nil {
		return
	}
	typ := PaginateType(p.Type.Value)
	if !PaginateTypes.Has(typ) {
		if p.Type.Pos != (Pos{}) { // absent, it is reported as a missing key
			errs.Add(p.Type.Pos, PaginateTypes.Hint(), "source: paginate: unknown type %q", typ)
		}
		return
	}
	if p.Size < 0 {
		errs.Add(p.Pos, "", "source: paginate: size must not be negative")
	}
	if typ == PaginateOffset && p.Size < 1 {
		errs.Add(p.Pos, "offsets advance by the page size: e.g. paginate: { type: offset, size: 100 }", "source: paginate: offset needs size")
	}
	if p.Start != nil && typ != PaginatePage && typ != PaginateOffset {
		errs.Add(p.Pos, "", "source: paginate: start applies to page and offset")
	}
	if p.Size > 0 && typ != PaginatePage && typ != PaginateOffset {
		errs.Add(p.Pos, "put the page size in the request (e.g. limit=100)", "source: paginate: size applies to page and offset")
	}
	need := map[string]*Locator{"cursor": p.Cursor, "next": p.Next}
	want := map[PaginateType]string{PaginateCursor: "cursor", PaginateNextURL: "next"}[typ]
	for name, l := range need {
		switch {
		case l == nil && name == want:
			hint := "e.g. cursor: { json: meta.next_cursor }"
			if name == "next" {
				hint = "e.g. next: { json: links.next }"
			}
			errs.Add(p.Pos, hint, "source: paginate: %s needs %s", typ, name)
		case l != nil && name != want:
			errs.Add(l.Pos, "", "source: paginate: %s does not apply to type %s", name, typ)
		case l != nil:
			n := 0
			for _, v := range []string{l.JSON, l.XPath, l.Header} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				errs.Add(l.Pos, "one of json, xpath or header", "source: paginate: %s needs exactly one of json, xpath or header", name)
			}
		}
	}
}

// ParseRate reads a rate such as 5/s, 100/m, 2/h or 1/500ms: n events
// per interval.
func ParseRate(s string) (n int, per time.Duration, err error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, errRate(s)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, 0, errRate(s)
		}
	}
	if num == "" || len(num) > 9 {
		return 0, 0, errRate(s)
	}
	for _, c := range num {
		n = n*10 + int(c-'0')
	}
	switch unit {
	case "s":
		per = time.Second
	case "m", "min":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		per, err = time.ParseDuration(unit)
		if err != nil {
			return 0, 0, errRate(s)
		}
	}
	if n < 1 || per <= 0 {
		return 0, 0, errRate(s)
	}
	return n, per, nil
}

type rateError string

func (e rateError) Error() string {
	return "want N/s, N/m, N/h or N/DURATION with N ≥ 1, got \"" + string(e) + "\""
}

func errRate(s string) error { return rateError(s) }
