package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/plumbhq/plumb/engine"
)

const benchDoc = `
Drive an integration over N synthetic leads with C workers and report
throughput and costs: total time, leads/s, outcome counts, p50/p95/p99 of
the lead duration and of each step's duration, heap allocations and bytes
allocated per lead (runtime.MemStats deltas ÷ N) and the peak RSS of the
process (VmHWM; Linux only).

The leads are made from a template lead (--lead-template, by default the
lead.json next to the integration). Every "{{n}}" in a string of the
template is replaced by the lead's number (1..N). A template without
"{{n}}" gets the number as a +N tag in the local part of its "email"
(jane@x.example becomes jane+7@x.example) and in its "id" field when it has
one, so no two leads are the same for caches.

Leads go through the same streaming runner as plumb run (at most 2×C
leads generated ahead), so the figures are those of plumb run minus the
output. With --sandbox the fake partner API runs in this process: the
allocations, bytes and RSS then include the server's side as well; point
--set base_url at a separate "plumb sandbox" to measure the client alone.

Exit status: 0 every lead ran and none ended in error, 1 some lead ended
in error, 2 bad usage, integration, settings or lead template, 130
interrupted (the leads done so far are reported).`

// benchFlags are the flags of plumb bench.
type benchFlags struct {
	settingsFlags
	leads        int
	concurrency  int
	leadTemplate string
	output       string
	cpuProfile   string
	memProfile   string
}

func benchCmd(ctx context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "bench", "[flags] INTEGRATION.yaml", benchDoc)
	var f benchFlags
	fs.IntVar(&f.leads, "leads", 1000, "run `N` synthetic leads")
	fs.IntVar(&f.concurrency, "concurrency", 1, "run up to `C` leads at once")
	fs.StringVar(&f.leadTemplate, "lead-template", "", "make the leads from the JSON object in `FILE` (default: lead.json next to the integration)")
	fs.StringVar(&f.output, "output", "text", "report format: text or json")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof)")
	fs.StringVar(&f.memProfile, "memprofile", "", "write an allocation profile of the run to `FILE` (go tool pprof)")
	f.settingsFlags.register(fs)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	bad := usageError(s, "bench")
	file, problem := integrationArg(pos)
	switch {
	case problem != "":
		return bad("%s", problem)
	case f.leads < 1:
		return bad("--leads must be at least 1, got %d", f.leads)
	case f.concurrency < 1:
		return bad("--concurrency must be at least 1, got %d", f.concurrency)
	case f.output != "text" && f.output != "json":
		return bad("--output must be text or json, got %q", f.output)
	}

	tmplFile := f.leadTemplate
	if tmplFile == "" {
		tmplFile = filepath.Join(filepath.Dir(file), "lead.json")
	}
	tmpl, err := readLeadTemplate(tmplFile)
	if err != nil {
		if f.leadTemplate == "" && os.IsNotExist(err) {
			return bad("no lead template: %s does not exist; give one with --lead-template FILE", tmplFile)
		}
		s.errorf("bench: --lead-template: %v", err)
		return ExitUsage
	}

	tuneGC(batchGCPercent)
	setup := &planSetup{s: s, cmd: "bench", file: file}
	defer setup.close()
	if !setup.load(nil) || !setup.resolve(&f.settingsFlags) {
		return ExitUsage
	}
	plan, settings := setup.plan, setup.settings

	rep := newBenchReport(plan.Name(), f.leads, f.concurrency, f.sandbox)
	src := &syntheticLeads{tmpl: tmpl, n: f.leads}
	stopProfile, err := startProfiles(f.cpuProfile, f.memProfile)
	if err != nil {
		s.errorf("bench: %v", err)
		return ExitUsage
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, interrupted := runLeads(ctx, settings, src, f.concurrency, nil, func(_ item, r *engine.Result) error {
		rep.add(r)
		return nil
	})
	rep.elapsed = time.Since(start)
	runtime.ReadMemStats(&after)
	rep.mallocs = after.Mallocs - before.Mallocs
	rep.bytes = after.TotalAlloc - before.TotalAlloc
	rep.rss, rep.rssOK = peakRSS()
	if err := stopProfile(); err != nil {
		s.errorf("bench: %v", err)
		return ExitUsage
	}

	if f.output == "json" {
		b, _ := json.MarshalIndent(rep.json(), "", "  ")
		s.stdout.Write(append(b, '\n'))
	} else {
		rep.write(s.stdout)
	}
	switch {
	case interrupted:
		s.errorf("bench: interrupted after %d leads", rep.done)
		return ExitInterrupt
	case rep.counts[engine.Error] > 0:
		return ExitLeadError
	}
	return ExitOK
}

// startProfiles starts the CPU profile and turns on allocation sampling
// for the run; stop writes both out.
func startProfiles(cpu, mem string) (stop func() error, err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return func() error {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
		}
		if mem == "" {
			return nil
		}
		f, err := os.Create(mem)
		if err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("--memprofile: %w", err)
		}
		return f.Close()
	}, nil
}

// readLeadTemplate reads the JSON object the synthetic leads are made from.
func readLeadTemplate(name string) (map[string]any, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lead, err := decodeLead(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lead, nil
}

// syntheticLeads is a leadSource of n leads made from tmpl, numbered 1..n.
type syntheticLeads struct {
	tmpl map[string]any
	n, i int
	// placeholder is set once tmpl is known to hold "{{n}}" somewhere.
	placeholder, checked bool
}

func (g *syntheticLeads) Next() (item, error) {
	if g.i >= g.n {
		return item{}, io.EOF
	}
	if !g.checked {
		g.placeholder, g.checked = hasPlaceholder(g.tmpl), true
	}
	g.i++
	return item{index: g.i, line: g.i, lead: syntheticLead(g.tmpl, g.i, g.placeholder)}, nil
}

const leadNumber = "{{n}}"

func hasPlaceholder(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.Contains(t, leadNumber)
	case map[string]any:
		for _, x := range t {
			if hasPlaceholder(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if hasPlaceholder(x) {
				return true
			}
		}
	}
	return false
}

// syntheticLead returns a deep copy of tmpl made unique by n: every "{{n}}"
// replaced by n, or without placeholders an email tagged +n and the id set
// to n.
func syntheticLead(tmpl map[string]any, n int, placeholder bool) map[string]any {
	num := strconv.Itoa(n)
	lead := substitute(tmpl, num, placeholder).(map[string]any)
	if placeholder {
		return lead
	}
	if e, ok := lead["email"].(string); ok {
		if local, dom, ok := strings.Cut(e, "@"); ok {
			local, _, _ = strings.Cut(local, "+")
			lead["email"] = local + "+" + num + "@" + dom
		}
	}
	switch lead["id"].(type) {
	case string:
		lead["id"] = num
	case float64:
		lead["id"] = float64(n)
	}
	return lead
}

func substitute(v any, num string, placeholder bool) any {
	switch t := v.(type) {
	case string:
		if placeholder {
			return strings.ReplaceAll(t, leadNumber, num)
		}
		return t
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = substitute(x, num, placeholder)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = substitute(x, num, placeholder)
		}
		return out
	}
	return v
}

// benchReport accumulates results in memory that does not grow with the
// number of leads: counts and fixed-size histograms.
type benchReport struct {
	name                string
	leads, concurrency  int
	sandbox             bool
	done                int
	counts              map[engine.Outcome]int
	lead                histogram
	stepNames           []string
	steps               map[string]*stepStats
	elapsed             time.Duration
	mallocs, bytes, rss uint64
	rssOK               bool
}

// stepStats are the durations of the runs of one step that were not
// skipped.
type stepStats struct {
	ran     int
	outcome map[engine.Outcome]int
	hist    histogram
}

func newBenchReport(name string, leads, concurrency int, sandbox bool) *benchReport {
	return &benchReport{name: name, leads: leads, concurrency: concurrency, sandbox: sandbox,
		counts: map[engine.Outcome]int{}, steps: map[string]*stepStats{}}
}

func (b *benchReport) add(r *engine.Result) {
	b.done++
	b.counts[r.Outcome]++
	b.lead.add(time.Duration(r.Duration))
	for _, st := range r.Steps {
		ss := b.steps[st.Name]
		if ss == nil {
			ss = &stepStats{outcome: map[engine.Outcome]int{}}
			b.steps[st.Name] = ss
			b.stepNames = append(b.stepNames, st.Name)
		}
		ss.outcome[st.Outcome]++
		if st.Outcome == engine.Skip {
			continue
		}
		ss.ran++
		ss.hist.add(time.Duration(st.Duration))
	}
}

func (b *benchReport) rate() float64 {
	if b.elapsed <= 0 {
		return 0
	}
	return float64(b.done) / b.elapsed.Seconds()
}

func (b *benchReport) perLead(x uint64) float64 {
	if b.done == 0 {
		return 0
	}
	return float64(x) / float64(b.done)
}

func percentiles(h *histogram) string {
	if h.n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("p50 %s, p95 %s, p99 %s", fmtLatency(h.quantile(0.50)), fmtLatency(h.quantile(0.95)), fmtLatency(h.quantile(0.99)))
}

// fmtLatency renders a duration with three significant digits: µs below a
// millisecond, ms below a second, else seconds.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func (b *benchReport) write(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "bench: %s: %d leads, concurrency %d\n", b.name, b.done, b.concurrency)
	fmt.Fprintf(bw, "total: %s\n", fmtLatency(b.elapsed))
	fmt.Fprintf(bw, "throughput: %.1f leads/s\n", b.rate())
	parts := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%d %s", b.counts[o], o))
	}
	fmt.Fprintf(bw, "outcomes: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(bw, "lead: %s\n", percentiles(&b.lead))
	width := 0
	for _, n := range b.stepNames {
		width = max(width, len(n))
	}
	for _, n := range b.stepNames {
		ss := b.steps[n]
		fmt.Fprintf(bw, "step %-*s  ran %d: %s\n", width, n, ss.ran, percentiles(&ss.hist))
	}
	var note string
	if b.sandbox {
		note = " (including the in-process sandbox)"
	}
	fmt.Fprintf(bw, "allocs/lead: %.0f, bytes/lead: %s%s\n", b.perLead(b.mallocs), fmtBytes(b.perLead(b.bytes)), note)
	if b.rssOK {
		fmt.Fprintf(bw, "peak RSS: %s\n", fmtBytes(float64(b.rss)))
	} else {
		fmt.Fprintln(bw, "peak RSS: n/a")
	}
}

// benchJSON is the --output json report; durations are milliseconds.
type benchJSON struct {
	Integration   string            `json:"integration"`
	Leads         int               `json:"leads"`
	Concurrency   int               `json:"concurrency"`
	Sandbox       bool              `json:"sandbox"`
	TotalMS       float64           `json:"total_ms"`
	LeadsPerSec   float64           `json:"leads_per_s"`
	Outcomes      map[string]int    `json:"outcomes"`
	Lead          *benchPercentiles `json:"lead"`
	Steps         []benchStepJSON   `json:"steps"`
	AllocsPerLead float64           `json:"allocs_per_lead"`
	BytesPerLead  float64           `json:"bytes_per_lead"`
	PeakRSSBytes  *uint64           `json:"peak_rss_bytes"`
}

type benchStepJSON struct {
	Name     string            `json:"name"`
	Ran      int               `json:"ran"`
	Outcomes map[string]int    `json:"outcomes"`
	Duration *benchPercentiles `json:"duration"`
}

type benchPercentiles struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
}

func jsonPercentiles(h *histogram) *benchPercentiles {
	if h.n == 0 {
		return nil
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &benchPercentiles{P50: ms(h.quantile(0.50)), P95: ms(h.quantile(0.95)), P99: ms(h.quantile(0.99))}
}

func outcomeCounts(m map[engine.Outcome]int) map[string]int {
	out := make(map[string]int, len(outcomes))
	for _, o := range outcomes {
		out[string(o)] = m[o]
	}
	return out
}

func (b *benchReport) json() benchJSON {
	j := benchJSON{Integration: b.name, Leads: b.done, Concurrency: b.concurrency, Sandbox: b.sandbox,
		TotalMS: float64(b.elapsed) / float64(time.Millisecond), LeadsPerSec: b.rate(),
		Outcomes: outcomeCounts(b.counts), Lead: jsonPercentiles(&b.lead), Steps: []benchStepJSON{},
		AllocsPerLead: b.perLead(b.mallocs), BytesPerLead: b.perLead(b.bytes)}
	for _, n := range b.stepNames {
		ss := b.steps[n]
		j.Steps = append(j.Steps, benchStepJSON{Name: n, Ran: ss.ran, Outcomes: outcomeCounts(ss.outcome), Duration: jsonPercentiles(&ss.hist)})
	}
	if b.rssOK {
		rss := b.rss
		j.PeakRSSBytes = &rss
	}
	return j
}

func fmtBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// peakRSS returns the process's peak resident set size (VmHWM) on Linux.
func peakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
