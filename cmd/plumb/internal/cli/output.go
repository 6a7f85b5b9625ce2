package cli

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/jsonw"
	"github.com/plumbhq/plumb/internal/termtext"
)

// output writes results as they come, in input order.
type output interface {
	result(it item, r *engine.Result) error
	// flush writes out what is buffered.
	flush() error
	// finish ends the output and writes the summary.
	finish(sum *summary) error
}

// newOutput writes results as format. Results come masked from the
// engine (secrets are masked by component there, never by rewriting the
// serialised output, which could corrupt it).
func newOutput(format string, stdout, stderr io.Writer) output {
	w := bufio.NewWriterSize(stdout, 32<<10)
	switch format {
	case "json":
		return &jsonOutput{w: w, stderr: stderr}
	case "ndjson":
		return &jsonOutput{w: w, stderr: stderr, lines: true}
	}
	return &textOutput{w: w}
}

// jsonOutput writes one JSON array of results, or with lines one result per
// line (NDJSON). The summary goes to stderr so stdout stays machine-readable.
type jsonOutput struct {
	w      *bufio.Writer
	stderr io.Writer
	lines  bool
	n      int
	// buf holds one result's JSON at a time, reused
	buf []byte
}

func (o *jsonOutput) result(it item, r *engine.Result) error {
	if cap(o.buf) > 1<<20 {
		o.buf = nil // do not keep a huge result's buffer
	}
	b, err := appendJSONResult(o.buf[:0], it, r)
	if err != nil {
		return fmt.Errorf("lead %d: encoding the result: %w", it.index, err)
	}
	o.buf = b
	switch {
	case o.lines:
	case o.n == 0:
		o.w.WriteString("[\n")
	default:
		o.w.WriteString(",\n")
	}
	o.n++
	o.w.Write(b)
	if o.lines {
		o.w.WriteByte('\n')
	}
	return nil
}

// appendJSONResult writes a result with its place in the input: the
// 1-based index of the lead in the input, the line of the input file it
// came from (not for --lead), then the result's own fields. These are the
// bytes encoding/json wrote for a struct with the fields index and
// line,omitempty that embeds *engine.Result, without HTML escaping.
func appendJSONResult(b []byte, it item, r *engine.Result) ([]byte, error) {
	b = strconv.AppendInt(append(b, `{"index":`...), int64(it.index), 10)
	if it.line != 0 {
		b = strconv.AppendInt(append(b, `,"line":`...), int64(it.line), 10)
	}
	if r == nil {
		return append(b, '}'), nil
	}
	// the result's object, its opening brace turned into a comma
	open := len(b)
	b, err := r.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	b[open] = ','
	return b, nil
}

func (o *jsonOutput) flush() error { return o.w.Flush() }

func (o *jsonOutput) finish(sum *summary) error {
	if !o.lines {
		if o.n == 0 {
			o.w.WriteString("[")
		}
		o.w.WriteString("\n]\n")
	}
	if err := o.w.Flush(); err != nil {
		return err
	}
	sum.write(o.stderr)
	return nil
}

// textOutput writes results for people, then the summary.
type textOutput struct {
	w *bufio.Writer
}

func (o *textOutput) result(it item, r *engine.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "lead %d", it.index)
	if it.line > 0 && it.line != it.index {
		fmt.Fprintf(&b, " (line %d)", it.line)
	}
	fmt.Fprintf(&b, ": %s", r.Outcome)
	if len(r.Steps) > 0 || r.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", fmtDur(time.Duration(r.Duration)))
	}
	if r.Outcome != engine.Success && r.Reason != "" {
		b.WriteString(": ")
		if r.Step != "" {
			b.WriteString(r.Step + ": ")
		}
		b.WriteString(termSafe(r.Reason))
		if r.Outcome == engine.Error && r.Class != "" {
			fmt.Fprintf(&b, " [%s]", r.Class)
		}
	}
	b.WriteByte('\n')
	width := 0
	for _, st := range r.Steps {
		width = max(width, len(st.Name))
	}
	var appended []string
	for _, st := range r.Steps {
		fmt.Fprintf(&b, "  %-*s  %-7s", width, st.Name, st.Outcome)
		if st.Status != 0 {
			fmt.Fprintf(&b, "  %d", st.Status)
		}
		fmt.Fprintf(&b, "  %s", fmtDur(time.Duration(st.Duration)))
		if st.Attempts > 1 {
			fmt.Fprintf(&b, "  %s", plural(st.Attempts, "attempt"))
		}
		// a step that never sent anything has its reason on its own line
		// (the deciding step's is also on the lead's line)
		unsent := st.URL == "" && st.Outcome != engine.Success && st.Reason != ""
		if st.URL != "" {
			fmt.Fprintf(&b, "  %s %s", st.Method, termSafe(st.URL))
		} else if unsent {
			fmt.Fprintf(&b, "  %s", termSafe(st.Reason))
			if st.Outcome == engine.Error && st.Class != "" {
				fmt.Fprintf(&b, " [%s]", st.Class)
			}
		}
		b.WriteByte('\n')
		indent := strings.Repeat(" ", width+4)
		decided := st.Name == r.Step && st.Reason == r.Reason
		if st.Outcome != engine.Success && st.Reason != "" && !decided && !unsent {
			fmt.Fprintf(&b, "%sreason: %s", indent, termSafe(st.Reason))
			if st.Outcome == engine.Error && st.Class != "" {
				fmt.Fprintf(&b, " [%s]", st.Class)
			}
			b.WriteByte('\n')
		}
		if st.Variant > 0 {
			fmt.Fprintf(&b, "%svariant: %d (timeout %s)\n", indent, st.Variant, fmtDur(time.Duration(st.Timeout)))
		}
		if st.Rule != "" && (st.Attempts > 1 || st.Outcome != engine.Success) {
			fmt.Fprintf(&b, "%srule: %s\n", indent, termSafe(st.Rule))
		}
		if st.Fallback != "" {
			fmt.Fprintf(&b, "%sfallback: %s\n", indent, st.Fallback)
			for _, t := range st.Tried {
				fmt.Fprintf(&b, "%stried: %s\n", indent, termSafe(t))
			}
		}
		if st.Cache != "" {
			fmt.Fprintf(&b, "%scache: %s\n", indent, st.Cache)
		}
		if len(st.Captured) > 0 {
			fmt.Fprintf(&b, "%scaptured: %s\n", indent, termSafe(fmtFields(st.Captured)))
		}
		for _, n := range st.Notes {
			fmt.Fprintf(&b, "%snote: %s\n", indent, termSafe(n))
		}
		if len(st.Appended) > 0 {
			appended = append(appended, termSafe(fmtFields(st.Appended)))
		}
	}
	if len(appended) > 0 {
		fmt.Fprintf(&b, "  appended: %s\n", strings.Join(appended, " "))
	}
	_, err := o.w.WriteString(b.String())
	return err
}

func (o *textOutput) flush() error { return o.w.Flush() }

func (o *textOutput) finish(sum *summary) error {
	sum.write(o.w)
	return o.w.Flush()
}

// fmtFields renders a map as key=value pairs in key order, values as JSON.
func fmtFields(m map[string]any) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, err := jsonw.MarshalIndent(m[k], "")
		if err != nil {
			v = []byte(fmt.Sprintf("%q", fmt.Sprint(m[k])))
		}
		parts[i] = k + "=" + string(v)
	}
	return strings.Join(parts, " ")
}

// fmtDur renders a duration in ms below a second, else in seconds.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// outcomes lists the outcomes in the order the summary shows them.
var outcomes = [...]engine.Outcome{engine.Success, engine.Failure, engine.Error, engine.Skip}

// summary counts results per outcome and keeps a latency histogram of the
// leads that ran; its memory does not grow with the number of leads.
type summary struct {
	start     time.Time
	total     int
	offset    int64 // the input read up to the last lead (item.offset)
	malformed int
	counts    map[engine.Outcome]int
	latency   histogram
	// errors by class, tries beyond the first, fallback links used, and
	// latency per step (in the order steps first appear)
	classes   map[engine.Class]int
	timeouts  int
	retries   int
	fallbacks map[string]int
	stepNames []string
	steps     map[string]*histogram
}

func newSummary() *summary {
	return &summary{start: time.Now(), counts: map[engine.Outcome]int{}, classes: map[engine.Class]int{},
		fallbacks: map[string]int{}, steps: map[string]*histogram{}}
}

func (s *summary) add(it item, r *engine.Result) {
	s.total++
	s.offset = max(s.offset, it.offset)
	s.counts[r.Outcome]++
	if r.Outcome == engine.Error && r.Class != "" {
		s.classes[r.Class]++
	}
	if it.err != nil {
		s.malformed++
		return
	}
	if it.notRun != nil {
		return
	}
	s.latency.add(time.Duration(r.Duration))
	for _, st := range r.Steps {
		if st.Attempts > 1 {
			s.retries += st.Attempts - 1
		}
		if st.Class == engine.ClassTimeout {
			s.timeouts++
		}
		if st.Fallback != "" {
			s.fallbacks[st.Fallback]++
		}
		if st.Outcome == engine.Skip {
			continue
		}
		h := s.steps[st.Name]
		if h == nil {
			h = &histogram{}
			s.steps[st.Name] = h
			s.stepNames = append(s.stepNames, st.Name)
		}
		h.add(time.Duration(st.Duration))
	}
}

// write prints two lines: counts, then latency percentiles of the leads
// that ran (malformed rows excluded).
func (s *summary) write(w io.Writer) {
	noun := "leads"
	if s.total == 1 {
		noun = "lead"
	}
	parts := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%d %s", s.counts[o], o))
	}
	fmt.Fprintf(w, "summary: %d %s in %s: %s", s.total, noun, fmtDur(time.Since(s.start)), strings.Join(parts, ", "))
	if s.malformed > 0 {
		fmt.Fprintf(w, " (%d malformed input rows counted as error)", s.malformed)
	}
	fmt.Fprintln(w)
	if s.latency.n > 0 {
		fmt.Fprintf(w, "latency: p50 %s, p95 %s, p99 %s\n",
			fmtDur(s.latency.quantile(0.50)), fmtDur(s.latency.quantile(0.95)), fmtDur(s.latency.quantile(0.99)))
	}
	if len(s.classes) > 0 && s.total > 0 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(s.classes)) {
			parts = append(parts, fmt.Sprintf("%s %d (%.1f%%)", c, s.classes[c], 100*float64(s.classes[c])/float64(s.total)))
		}
		fmt.Fprintf(w, "errors by class: %s\n", strings.Join(parts, ", "))
	}
	if s.retries > 0 || s.timeouts > 0 || len(s.fallbacks) > 0 {
		line := fmt.Sprintf("retries: %d, timeouts: %d", s.retries, s.timeouts)
		for _, f := range slices.Sorted(maps.Keys(s.fallbacks)) {
			line += fmt.Sprintf(", fallback %s: %d", f, s.fallbacks[f])
		}
		fmt.Fprintln(w, line)
	}
	if len(s.stepNames) > 1 {
		for _, name := range s.stepNames {
			h := s.steps[name]
			fmt.Fprintf(w, "  step %s: p50 %s, p95 %s, p99 %s\n", name,
				fmtDur(h.quantile(0.50)), fmtDur(h.quantile(0.95)), fmtDur(h.quantile(0.99)))
		}
	}
}

// histogram buckets durations on a log scale (2% wide buckets from 1µs to
// hours), so percentiles are within 2% whatever the number of samples.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histBuckets = 1200
	histGrowth  = 1.02
)

func (h *histogram) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Ceil(math.Log(us)/math.Log(histGrowth))), histBuckets-1)
	}
	h.counts[i]++
	h.n++
}

// quantile returns the upper bound of the bucket holding the q-th sample.
func (h *histogram) quantile(q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
		}
	}
	return 0
}

// progress shows a one-line, self-rewriting count of the leads done on a
// terminal (stderr), at most ten times a second; with the size of the
// leads file known, also the part of it done, an estimate of the total and
// the time left. Every other write to the terminal goes through guard,
// which erases the line first, so the line never mixes with per-lead
// output, warnings or logs; it is drawn again at the next update.
type progress struct {
	w       io.Writer
	on      bool
	size    int64 // bytes of the leads file, 0 when unknown
	last    time.Time
	started time.Time

	mu    sync.Mutex
	shown bool
}

func newProgress(w io.Writer, on bool) *progress {
	return &progress{w: w, on: on, started: time.Now()}
}

// due reports whether the progress line should be redrawn now.
func (p *progress) due() bool {
	return p.on && time.Since(p.last) >= 100*time.Millisecond
}

// update redraws the progress line.
func (p *progress) update(s *summary) {
	p.last = time.Now()
	p.draw(p.line(s, p.last.Sub(p.started)))
}

// line is the progress line after elapsed: the leads done, and with the
// input's size known the share of it read, the estimated total and the
// time left.
func (p *progress) line(s *summary, elapsed time.Duration) string {
	rate := float64(s.total) / elapsed.Seconds()
	done := fmt.Sprintf("%d leads", s.total)
	if p.size > 0 && s.offset > 0 {
		f := min(float64(s.offset)/float64(p.size), 1)
		total := int(math.Round(float64(s.total) / f))
		left := time.Duration(float64(elapsed) * (1 - f) / f).Round(time.Second)
		done = fmt.Sprintf("%d/~%d leads (%.0f%%, ETA %s)", s.total, total, 100*f, left)
	}
	return fmt.Sprintf("%s: %d success, %d failure, %d error, %d skip (%.0f/s)",
		done, s.counts[engine.Success], s.counts[engine.Failure], s.counts[engine.Error], s.counts[engine.Skip], rate)
}

// draw writes line as the progress line.
func (p *progress) draw(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K"+line)
	p.shown = true
}

// clear erases the progress line before other output.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
}

func (p *progress) erase() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// guard returns w, through which every write first erases the progress
// line (w itself when there is no progress line).
func (p *progress) guard(w io.Writer) io.Writer {
	if !p.on {
		return w
	}
	return guarded{p: p, w: w}
}

type guarded struct {
	p *progress
	w io.Writer
}

func (g guarded) Write(b []byte) (int, error) {
	g.p.mu.Lock()
	defer g.p.mu.Unlock()
	g.p.erase()
	return g.w.Write(b)
}

// termSafe escapes, in one-line text that came from a partner or a lead,
// what could clear the screen, reorder or forge output lines on a terminal
// (termtext.Escape): control characters, CR and LF, bidi controls, bytes
// that are not UTF-8.
func termSafe(s string) string { return termtext.Escape(s, false) }

// progressLine is a progress display: run's and sync's.
type progressLine interface {
	due() bool
	clear()
	update(*summary)
}

// emitter records each result in sum and writes it to out; now and then
// it redraws the progress line, after flushing the results so they reach
// the terminal above it. With flushEach every result is flushed at once.
func emitter(sum *summary, out output, prog progressLine, flushEach bool) func(item, *engine.Result) error {
	return func(it item, r *engine.Result) error {
		sum.add(it, r)
		if err := out.result(it, r); err != nil {
			return err
		}
		if prog.due() {
			prog.clear()
			if err := out.flush(); err != nil {
				return err
			}
			prog.update(sum)
			return nil
		}
		if flushEach {
			return out.flush()
		}
		return nil
	}
}
