// Package source runs the source: section of an integration: it pulls
// records from an API page by page (engine.Runner.FetchPage), selects the
// records of each page, follows the pagination, runs every record through
// the integration's steps (engine.Runner.RunAll) and saves the sync state
// in a bbolt file only once every record of a page has an outcome
// (at-least-once: the state never runs ahead of the work). Records whose
// steps ended in error are kept in a retry list in the same file and run
// again first by the next sync. plumb sync is its command line; a program
// of one's own syncs the same way, from the one plan its file loads into:
//
//	plan, err := engine.Load("integration.yaml") // the file, read and compiled once
//	spec, err := source.Compile(plan)            // its source: section
//	runner, err := plan.Bind(engine.Config{Values: settings})
//	defer runner.Close(ctx)
//	store, err := source.OpenStore("sync.db")    // the saved state (bbolt)
//	defer store.Close()
//	rep, err := source.Sync(ctx, runner, spec, store, source.Options{Concurrency: 8},
//		func(rec source.Record, res *engine.Result) error { … return nil })
//	fmt.Println(rep.Ended, rep.Pages, rep.Records)
//
// Page requests wait for the source's rate: budget, which the runner makes
// as it makes the steps' (engine.Config.RateLimiter: shared across a
// cluster when the runner's budgets are).
//
// It is public because syncing a source is an embedder's need like
// running a lead: plumb sync and plumb serve's scheduled syncs use the
// same Sync and the same [StateStore] an embedder may implement.
package source

import (
	"errors"
	"strings"
	"time"

	"github.com/antchfx/xpath"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/cond"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// Spec is a compiled source: section, read from one engine.Plan.
type Spec struct {
	// Key names the sync state in the state file: the integration's name
	// and the source's, joined by a slash.
	Key string
	// plan is the plan the spec was compiled from: Sync runs only runners
	// bound from it
	plan *engine.Plan

	recJSON   string
	recXPath  *xpath.Expr
	format    parse.Format
	pager     paginator
	stop      *cond.Program
	stopResp  bool
	stopRead  bodyPaths // what stop_when reads of response.body
	maxPages  int
	incField  []string
	incStart  string
	lookback  time.Duration
	recordKey []string
}

// Compile compiles the source: section of plan: its records, pagination
// and incremental cursor (stop_when and rate: are the plan's, compiled by
// engine.Load). It returns an error when the integration has none.
func Compile(plan *engine.Plan) (*Spec, error) {
	if plan == nil {
		return nil, errors.New("source: no plan to compile (load one with engine.Load)")
	}
	src, stop, _ := plan.SourceSection()
	if src == nil {
		return nil, errors.New(plan.File() + ": the integration has no source: section to sync from")
	}
	name := src.Name.Value
	if name == "" {
		name = "source"
	}
	s := &Spec{Key: plan.Name() + "/" + name, plan: plan, maxPages: src.MaxPages, format: parse.Format(src.Response.Format)}
	if s.maxPages == 0 {
		s.maxPages = steps.DefaultMaxPages
	}
	recXPath, next := plan.SourceReaders() // compiled by engine.Load
	if r := src.Records; r != nil {
		if r.XPath != "" {
			s.recXPath = recXPath
		} else {
			s.recJSON = r.JSON
		}
	}
	s.pager = compilePager(src, next)
	s.compileStop(src.StopWhen.Value, stop)
	if inc := src.Incremental; inc != nil {
		s.incField = strings.Split(inc.CursorField, ".")
		s.incStart, s.lookback = inc.Start, inc.Lookback
	}
	if src.Key != "" {
		s.recordKey = strings.Split(src.Key, ".")
	}
	return s, nil
}

// compileStop keeps stop_when as the plan compiled it (text src), with
// what it reads of the answer.
func (s *Spec) compileStop(src string, prog *cond.Program) {
	if prog == nil {
		return
	}
	s.stop = prog
	for _, ref := range prog.Refs() {
		if ref == "response" || strings.HasPrefix(ref, "response.") {
			s.stopResp = true
		}
	}
	if s.stopResp {
		s.stopRead = stopBodyPaths(src)
	}
}

// MaxPages is the most pages one sync fetches.
func (s *Spec) MaxPages() int { return s.maxPages }

// Incremental reports whether the source keeps a cursor between syncs.
func (s *Spec) Incremental() bool { return s.incField != nil }
