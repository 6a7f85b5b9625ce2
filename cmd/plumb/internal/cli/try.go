package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/eventlog"
	"github.com/plumbhq/plumb/engine/observe"
	"github.com/plumbhq/plumb/internal/jsonw"
	"github.com/plumbhq/plumb/steps"
)

const tryDoc = `
The test console: render one step's request for a lead, send it, and print
the request (secrets masked), the raw response (control characters
escaped) with a timing breakdown (DNS, connect, TLS, first byte, total) for
every try, the rule applied after each failed try, then the captures,
appended fields and the step's outcome.

--step may be left out when the integration has one step. A step that reads
captures of earlier steps (steps.NAME.FIELD) gets them from --prior, a JSON
object of step name to captures, e.g. {"token": {"access_token": "abc"}}.
Settings come from --settings, --set, --sandbox and the environment as for
plumb run. --dry-run prints the rendered request without sending it.
--cache FILE and --token-dir DIR work as for plumb run: a step's cache
and fallback cache: links read and write the answers kept in FILE, and
OAuth2 authorization_code tokens come from 'plumb auth login'.

Exit status: 0 the step ran (success, failure or skip), 1 it ended in
error, 2 bad usage, integration, settings or input file.`

type tryFlags struct {
	step, lead, prior string
	settingsFlags
	storeFlags
	output  string
	dryRun  bool
	verbose verbosity
}

func tryCmd(ctx context.Context, s *stdio, args []string) int {
	f, file, code := parseTryFlags(s, args)
	if f == nil {
		return code
	}
	ex := &tryExchanges{json: f.output == "json", printer: &exchangePrinter{w: s.stdout}}
	opts, warns := tryOptions(s, f, ex)
	defer warns.report(s.stderr)
	setup := &planSetup{s: s, cmd: "try", file: file}
	defer setup.close()
	if !setup.load(&f.storeFlags, opts...) {
		return ExitUsage
	}
	if code, ok := chooseStep(s, f, setup.plan.StepNames(), file); !ok {
		return code
	}
	if !setup.resolve(&f.settingsFlags) {
		return ExitUsage
	}
	lead, prior, ok := readTryInput(s, f)
	if !ok {
		return ExitUsage
	}
	if f.dryRun {
		return tryDryRun(s, f, setup.settings, lead, prior)
	}
	return tryRun(ctx, s, f, setup.settings, ex, lead, prior)
}

// tryRun runs the step for the lead and prints its result: as JSON with
// the exchanges kept, or as text after the exchanges printed.
func tryRun(ctx context.Context, s *stdio, f *tryFlags, settings *engine.Runner, ex *tryExchanges, lead map[string]any, prior map[string]map[string]any) int {
	res, err := settings.RunStep(ctx, f.step, lead, prior)
	if err != nil {
		return usageError(s, "try")("%v", err)
	}
	code := ExitOK
	if res.Outcome == engine.Error {
		code = ExitLeadError
	}
	if f.output == "json" {
		if c := writeJSON(s, struct {
			Exchanges []*engine.Exchange `json:"exchanges"`
			Result    *engine.Result     `json:"result"`
		}{ex.all(), res}, settings.Redact); c != ExitOK {
			return c
		}
		return code
	}
	fmt.Fprint(s.stdout, settings.Redact(stepReport(res.Steps[0])))
	return code
}

// parseTryFlags parses plumb try's flags and checks them: the flags and
// the integration file, or nil and the exit code.
func parseTryFlags(s *stdio, args []string) (*tryFlags, string, int) {
	fs := newFlagSet(s, "try", "[flags] INTEGRATION.yaml", tryDoc)
	f := &tryFlags{}
	fs.StringVar(&f.step, "step", "", "the step to run (default: the only step)")
	fs.StringVar(&f.lead, "lead", "", "the lead: a JSON object in `FILE` (- for stdin)")
	fs.StringVar(&f.prior, "prior", "", "captures of earlier steps: a JSON object of step name to captures in `FILE`")
	f.settingsFlags.register(fs)
	f.storeFlags.register(fs)
	fs.StringVar(&f.output, "output", "text", "output format: text or json")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the rendered request without sending it")
	f.verbose.register(fs)
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return nil, "", exitForParse(err)
	}
	bad := usageError(s, "try")
	file, problem := integrationArg(pos)
	switch {
	case problem != "":
		return nil, "", bad("%s", problem)
	case f.lead == "":
		return nil, "", bad("give the lead with --lead FILE")
	case f.output != "text" && f.output != "json":
		return nil, "", bad("--output must be text or json, got %q", f.output)
	}
	return f, file, ExitOK
}

// tryExchanges takes the step's exchanges: printed as they happen, or
// kept for the JSON output.
type tryExchanges struct {
	json    bool
	printer *exchangePrinter
	list    []*engine.Exchange
}

func (t *tryExchanges) observe(_ context.Context, ex *engine.Exchange) {
	if t.json {
		t.list = append(t.list, ex)
		return
	}
	t.printer.print(ex, "")
}

// all is the exchanges kept, never nil (an empty JSON list).
func (t *tryExchanges) all() []*engine.Exchange {
	if t.list == nil {
		return []*engine.Exchange{}
	}
	return t.list
}

// tryOptions are the engine options of plumb try: the exchanges to ex,
// the log per -v; without -v the warnings, to report at the end.
func tryOptions(s *stdio, f *tryFlags, ex *tryExchanges) ([]engine.Option, *warnings) {
	opts := []engine.Option{engine.WithEvents(observe.New(ex.observe))}
	var warns *warnings
	l := f.verbose.logger(s.stderr)
	if l == nil {
		warns = newWarnings(s.stderr)
		l = slog.New(warns)
	}
	return append(opts, engine.WithLogger(l), engine.WithEvents(eventlog.New(l))), warns
}

// chooseStep sets f.step to the only step when --step is left out and
// checks the step exists; false with the exit code when not.
func chooseStep(s *stdio, f *tryFlags, names []string, file string) (int, bool) {
	bad := usageError(s, "try")
	switch {
	case f.step == "" && len(names) == 1:
		f.step = names[0]
	case f.step == "":
		return bad("%s has %d steps, choose one with --step: %s", file, len(names), strings.Join(names, ", ")), false
	case !contains(names, f.step):
		return bad("%s has no step %q (steps: %s)", file, f.step, strings.Join(names, ", ")), false
	}
	return ExitOK, true
}

// readTryInput reads the lead of --lead and the captures of --prior.
func readTryInput(s *stdio, f *tryFlags) (map[string]any, map[string]map[string]any, bool) {
	src, closeSrc, err := openLeads(s, f.lead, true, "auto")
	if err != nil {
		s.errorf("try: %v", err)
		return nil, nil, false
	}
	it, err := src.Next()
	closeSrc()
	if err != nil {
		s.errorf("try: %v", err)
		return nil, nil, false
	}
	prior, err := readPrior(f.prior)
	if err != nil {
		s.errorf("try: %v", err)
		return nil, nil, false
	}
	return it.lead, prior, true
}

// tryDryRun prints the step's rendered request without sending it.
func tryDryRun(s *stdio, f *tryFlags, settings *engine.Runner, lead map[string]any, prior map[string]map[string]any) int {
	if prior != nil {
		fmt.Fprintln(s.stderr, "plumb: try: note: --dry-run does not read --prior; a step that reads earlier captures reports an error")
	}
	var r engine.Rendered
	for _, x := range settings.DryRun(lead) {
		if x.Step == f.step {
			r = x
		}
	}
	code := ExitOK
	if r.Err != "" && !r.NeedsCaptures { // it cannot be built: the step would end in error (as run --dry-run counts it)
		code = ExitLeadError
	}
	if f.output == "json" {
		if c := writeJSON(s, r); c != ExitOK {
			return c
		}
		return code
	}
	writeRendered(s.stdout, []engine.Rendered{r}, "")
	return code
}

// stepReport is the text plumb try prints after the exchanges: the step's
// outcome, then its reason, fallback, tries, captures and appended fields.
func stepReport(sr engine.StepResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %s: %s", sr.Name, sr.Outcome)
	var facts []string
	if sr.Status != 0 {
		facts = append(facts, fmt.Sprintf("HTTP %d", sr.Status))
	}
	if sr.Attempts > 0 {
		facts = append(facts, plural(sr.Attempts, "attempt"))
	}
	facts = append(facts, fmtDur(time.Duration(sr.Duration)))
	fmt.Fprintf(&b, " (%s)\n", strings.Join(facts, ", "))
	if sr.Reason != "" {
		fmt.Fprintf(&b, "  reason: %s\n", dumpSafe(sr.Reason, false))
	}
	if sr.Fallback != "" {
		fmt.Fprintf(&b, "  fallback: %s\n", dumpSafe(sr.Fallback, false))
	}
	for _, t := range sr.Tried {
		fmt.Fprintf(&b, "  tried: %s\n", dumpSafe(t, false))
	}
	if len(sr.Captured) > 0 {
		fmt.Fprintf(&b, "  captured: %s\n", fmtFields(sr.Captured))
	}
	for _, n := range sr.Notes {
		fmt.Fprintf(&b, "  note: %s\n", termSafe(n))
	}
	if len(sr.Appended) > 0 {
		fmt.Fprintf(&b, "  appended: %s\n", fmtFields(sr.Appended))
	}
	return b.String()
}

// readPrior reads the captures of earlier steps for plumb try.
func readPrior(file string) (map[string]map[string]any, error) {
	if file == "" {
		return nil, nil
	}
	b, err := steps.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--prior: %w", err)
	}
	var prior map[string]map[string]any
	if err := json.Unmarshal(b, &prior); err != nil {
		return nil, fmt.Errorf("--prior %s: want a JSON object of step name to captures: %w", file, err)
	}
	return prior, nil
}

// writeJSON prints v as indented JSON on stdout, passed through the
// redact functions given.
func writeJSON(s *stdio, v any, redact ...func(string) string) int {
	b, err := jsonw.MarshalIndent(v, "  ")
	if err != nil {
		s.errorf("encoding JSON: %v", err)
		return ExitUsage
	}
	out := string(b)
	for _, r := range redact {
		out = r(out)
	}
	fmt.Fprintln(s.stdout, out)
	return ExitOK
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plural spells n with its noun: 1 lead, 2 leads.
func plural(n int, noun string) string { return pluralOf(n, noun, noun+"s") }

// pluralOf is plural for nouns whose plural is not noun+"s".
func pluralOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
