package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// maxLeadLine caps one NDJSON line; a longer line is reported as a
// malformed row and skipped, and reading goes on.
const maxLeadLine = 8 << 20

// item is one lead read from the input, or the malformed row that stood in
// its place.
type item struct {
	index int // 1-based position among the leads of the input
	line  int // line of the input the lead starts on; 0 for --lead
	lead  map[string]any
	err   error // the row could not be read as a lead; the text names the line
	// offset is how many bytes of the input file were read up to the end
	// of this lead (0 when unknown: stdin), for the progress line.
	offset int64
	// notRun is set for a lead that was read but not run (--max-errors
	// stopped the run): its result says why.
	notRun error
}

// leadSource yields leads one at a time so a leads file is never held in
// memory. Next returns io.EOF at the end; any other error means the input
// itself could not be read and no more leads follow. A malformed row is not
// an error of Next: it is an item whose err is set.
type leadSource interface {
	Next() (item, error)
}

// openLeads opens the --lead or --leads input. name "-" reads stdin. format
// is auto (by extension: .csv is CSV, anything else NDJSON), ndjson or csv.
// The returned close function releases the file.
func openLeads(s *stdio, name string, single bool, format string) (leadSource, func(), error) {
	var r io.Reader = s.stdin
	closeFn := func() {}
	var counted *countingReader
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = f, func() { _ = f.Close() }
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && !single {
			counted = &countingReader{r: f, size: st.Size()}
			r = counted
		}
	}
	if single {
		src, err := readSingleLead(name, r)
		if err != nil {
			closeFn()
			return nil, nil, err
		}
		return src, closeFn, nil
	}
	if format == "auto" {
		format = "ndjson"
		if strings.EqualFold(extension(name), ".csv") {
			format = "csv"
		}
	}
	if format == "csv" {
		src, err := newCSVSource(r)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return counted.track(src, src.recs.r), closeFn, nil
	}
	src := newNDJSONSource(r)
	return counted.track(src, src.r), closeFn, nil
}

// countingReader counts the bytes read from a file of a known size.
type countingReader struct {
	r    io.Reader
	n    int64
	size int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// track makes src set each item's offset: the bytes of the file read less
// those still buffered in br. Without a counted file it returns src.
func (c *countingReader) track(src leadSource, br *bufio.Reader) leadSource {
	if c == nil {
		return src
	}
	return &trackedSource{src: src, c: c, br: br}
}

// trackedSource is a leads file whose items carry their offset.
type trackedSource struct {
	src leadSource
	c   *countingReader
	br  *bufio.Reader
}

func (t *trackedSource) Next() (item, error) {
	it, err := t.src.Next()
	it.offset = t.c.n - int64(t.br.Buffered())
	return it, err
}

// size is the size of the leads file.
func (t *trackedSource) size() int64 { return t.c.size }

// inputSize is the size of src's file when it is known, else 0.
func inputSize(src leadSource) int64 {
	if t, ok := src.(*trackedSource); ok {
		return t.size()
	}
	return 0
}

func extension(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 && !strings.ContainsAny(name[i:], `/\`) {
		return name[i:]
	}
	return ""
}

// singleSource yields one lead.
type singleSource struct {
	lead map[string]any
	done bool
}

func (s *singleSource) Next() (item, error) {
	if s.done {
		return item{}, io.EOF
	}
	s.done = true
	return item{index: 1, lead: s.lead}, nil
}

func readSingleLead(name string, r io.Reader) (*singleSource, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxLeadLine+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxLeadLine {
		return nil, fmt.Errorf("%s: lead is larger than %d bytes", name, maxLeadLine)
	}
	lead, err := decodeLead(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &singleSource{lead: lead}, nil
}

// decodeLead decodes one JSON object, numbers exact (engine.DecodeLead).
func decodeLead(b []byte) (map[string]any, error) { return engine.DecodeLead(b) }

// ndjsonSource reads one JSON object per line; blank lines are ignored.
type ndjsonSource struct {
	r     *bufio.Reader
	buf   []byte
	line  int
	index int
}

func newNDJSONSource(r io.Reader) *ndjsonSource {
	return &ndjsonSource{r: bufio.NewReaderSize(r, 64<<10)}
}

func (s *ndjsonSource) Next() (item, error) {
	for {
		b, tooLong, err := s.readLine()
		if err != nil && err != io.EOF {
			return item{}, err
		}
		if len(b) == 0 && !tooLong && err == io.EOF {
			return item{}, io.EOF
		}
		s.line++
		if !tooLong && len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		s.index++
		it := item{index: s.index, line: s.line}
		if tooLong {
			it.err = fmt.Errorf("line %d: longer than %d bytes", s.line, maxLeadLine)
		} else if it.lead, it.err = decodeLead(b); it.err != nil {
			it.err = fmt.Errorf("line %d: %w", s.line, it.err)
		}
		return it, nil
	}
}

// readLine returns the next line without reading more than maxLeadLine of
// it into memory; the rest of a longer line is skipped and tooLong set.
func (s *ndjsonSource) readLine() (line []byte, tooLong bool, err error) {
	s.buf = s.buf[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(s.buf)+len(frag) > maxLeadLine+1 {
				tooLong, s.buf = true, s.buf[:0]
			} else {
				s.buf = append(s.buf, frag...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return s.buf, tooLong, err
	}
}

// csvSource reads a CSV file with a header row. Each row becomes a lead
// whose fields are the header's column names with the row's cells as string
// values (empty cells are empty strings); a dotted column name such as
// source.id makes a nested object.
//
// Records are cut out of the input by csvRecords (quote-aware, at most
// maxLeadLine bytes each, like an NDJSON line) and each is parsed on its
// own, so one malformed or oversized row is an error item and cannot take
// the rows after it along; only a quote that is never closed makes the
// rest of the input unreadable, which is a read error.
type csvSource struct {
	recs   *csvRecords
	header [][]string // column name split on dots
	types  []string   // column type from a name:type header ("" for text)
	index  int
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	s := &csvSource{recs: newCSVRecords(r)}
	var header []string
	for header == nil {
		raw, err := s.recs.next()
		if err == io.EOF {
			return nil, errors.New("empty CSV file: the first row must name the columns")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the CSV header: %w", err)
		}
		if raw.blank {
			continue
		}
		if raw.tooLong {
			return nil, fmt.Errorf("line %d: the header row is longer than %d bytes", raw.line, maxLeadLine)
		}
		if header, err = parseCSVRecord(raw); err != nil {
			return nil, fmt.Errorf("reading the CSV header: %w", err)
		}
	}
	seen := map[string]bool{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.TrimSpace(h)
		typ := ""
		if name, t, ok := strings.Cut(h, ":"); ok {
			switch t = strings.TrimSpace(t); t {
			case "string", "number", "int", "bool", "json":
				h, typ = strings.TrimSpace(name), t
			default:
				return nil, fmt.Errorf("line 1: column %d: unknown type %q in %q (use name:string, :number, :int, :bool or :json)", i+1, t, h)
			}
		}
		s.types = append(s.types, typ)
		path := strings.Split(h, ".")
		for _, p := range path {
			if p == "" {
				return nil, fmt.Errorf("line 1: column %d: bad column name %q", i+1, h)
			}
		}
		if seen[h] {
			return nil, fmt.Errorf("line 1: column %d: duplicate column %q", i+1, h)
		}
		seen[h] = true
		s.header = append(s.header, path)
	}
	names := make([]string, len(s.header))
	for i, p := range s.header {
		names[i] = strings.Join(p, ".")
	}
	if c := steps.FieldClashes(names); len(c) > 0 {
		return nil, fmt.Errorf("line 1: column %d: %q clashes with column %q", c[0].Field+1, names[c[0].Field], names[c[0].Prefix])
	}
	return s, nil
}

func (s *csvSource) Next() (item, error) {
	var raw csvRecord
	for {
		var err error
		raw, err = s.recs.next()
		if err != nil {
			return item{}, err
		}
		if !raw.blank {
			break
		}
	}
	s.index++
	it := item{index: s.index, line: raw.line}
	if raw.tooLong {
		it.err = fmt.Errorf("%s: longer than %d bytes", raw.lines(), maxLeadLine)
		return it, nil
	}
	rec, err := parseCSVRecord(raw)
	if err != nil {
		it.err = err
		return it, nil
	}
	if len(rec) != len(s.header) {
		it.err = fmt.Errorf("%s: %d fields, the header has %d", raw.lines(), len(rec), len(s.header))
		return it, nil
	}
	lead := make(map[string]any, len(s.header))
	for i, path := range s.header {
		m := lead
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		v, err := csvValue(rec[i], s.types[i])
		if err != nil {
			it.err = fmt.Errorf("%s: column %s: %v", raw.lines(), strings.Join(path, "."), err)
			return it, nil
		}
		if v == nil && s.types[i] != "" {
			continue // an empty typed cell: the field is absent
		}
		m[path[len(path)-1]] = v
	}
	it.lead = lead
	return it, nil
}

// parseCSVRecord parses one record cut out by csvRecords.
func parseCSVRecord(raw csvRecord) ([]string, error) {
	cr := csv.NewReader(bytes.NewReader(raw.data))
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%s: invalid CSV: %v", raw.lines(), pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: invalid CSV: %v", raw.lines(), err)
	}
	if _, err := cr.Read(); err != io.EOF {
		// csvRecords and encoding/csv disagree on where the record ends;
		// only a malformed row can do that
		return nil, fmt.Errorf("%s: invalid CSV: malformed quotes", raw.lines())
	}
	return rec, nil
}

// csvRecord is one record of a CSV input, as bytes.
type csvRecord struct {
	data    []byte
	line    int  // the line it starts on
	last    int  // the line it ends on
	blank   bool // an empty line, which encoding/csv skips
	tooLong bool // longer than maxLeadLine: data is empty, the rest was skipped
}

// lines names the record's lines for error messages.
func (r csvRecord) lines() string {
	if r.last > r.line {
		return fmt.Sprintf("lines %d-%d", r.line, r.last)
	}
	return fmt.Sprintf("line %d", r.line)
}

// csvRecords cuts a CSV input into records without parsing their cells:
// a newline ends a record unless it is inside a quoted field, and a field
// is quoted when it starts with a quote (as encoding/csv reads it). A
// record holds at most maxLeadLine bytes in memory; the rest of a longer
// one is skipped, still following its quotes.
type csvRecords struct {
	r    *bufio.Reader
	line int // lines read
	buf  []byte
}

func newCSVRecords(r io.Reader) *csvRecords {
	br := bufio.NewReaderSize(r, 64<<10)
	// a byte order mark is not part of the first cell, so a quote after
	// it still opens a quoted field
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	return &csvRecords{r: br}
}

// errUnclosedQuote is the read error of a quoted field that the input ends
// in: the rows after its opening quote cannot be told apart.
type errUnclosedQuote struct{ line int }

func (e *errUnclosedQuote) Error() string {
	return fmt.Sprintf("line %d: a quoted field opens here and is never closed; the rows after it cannot be read", e.line)
}

const (
	csvFieldStart = iota
	csvUnquoted
	csvQuoted
	csvQuoteInQuoted // a quote inside a quoted field: its end, or the first of ""
)

func (c *csvRecords) next() (csvRecord, error) {
	rec := csvRecord{line: c.line + 1}
	c.buf = c.buf[:0]
	state, openedAt := csvFieldStart, 0
	n := 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			if err != io.EOF {
				return csvRecord{}, err
			}
			if state == csvQuoted {
				return csvRecord{}, &errUnclosedQuote{line: openedAt}
			}
			if n == 0 {
				return csvRecord{}, io.EOF
			}
			c.line++ // the last line, without a newline
			break
		}
		n++
		if !rec.tooLong {
			if len(c.buf) >= maxLeadLine {
				rec.tooLong, c.buf = true, c.buf[:0]
			} else {
				c.buf = append(c.buf, b)
			}
		}
		if b == '\n' {
			c.line++
		}
		switch state {
		case csvFieldStart, csvUnquoted:
			switch {
			case b == '"' && state == csvFieldStart:
				state, openedAt = csvQuoted, c.line+1
			case b == ',':
				state = csvFieldStart
			case b == '\n':
				goto done
			default:
				state = csvUnquoted
			}
		case csvQuoted:
			if b == '"' {
				state = csvQuoteInQuoted
			}
		case csvQuoteInQuoted:
			switch b {
			case '"':
				state = csvQuoted
			case ',':
				state = csvFieldStart
			case '\n':
				goto done
			default:
				state = csvUnquoted // malformed: parseCSVRecord reports it
			}
		}
	}
done:
	rec.last = c.line
	if rec.tooLong {
		return rec, nil
	}
	rec.data = c.buf
	rec.blank = len(bytes.TrimRight(c.buf, "\r\n")) == 0
	return rec, nil
}

// csvValue converts a cell to its column's type (a header such as
// verified:bool, age:int, score:number, tags:json). Untyped cells stay
// text; an empty typed cell is no value.
func csvValue(cell, typ string) (any, error) {
	if typ == "" || typ == "string" {
		return cell, nil
	}
	if strings.TrimSpace(cell) == "" {
		return nil, nil
	}
	switch typ {
	case "bool":
		return template.ToBool(cell)
	case "int":
		n, err := template.ToInt(cell)
		return float64(n), err
	case "number":
		return template.ToFloat(cell)
	}
	dec := json.NewDecoder(strings.NewReader(cell))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	return v, nil
}
