package history

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/steps"
)

// TestExchangesBounded: a lead retried many times with large answers
// keeps its exchanges up to MaxLeadExchanges bytes, each body cut to
// MaxExchangeBody; the later tries keep their status only. A token fetch's
// exchange (no try of that name) is not kept, and an integration that
// keeps none is not even asked.
func TestExchangesBounded(t *testing.T) {
	ctx := WithTries(context.Background(), nil, steps.HistoryExchangesAll)
	var ev Events
	if !ev.WantsExchanges(ctx) || ev.WantsExchanges(WithTries(context.Background(), nil, steps.HistoryExchangesNone)) ||
		ev.WantsExchanges(context.Background()) {
		t.Fatal("WantsExchanges: want true only for a lead that keeps them")
	}
	body := strings.Repeat("b", 3*MaxExchangeBody)
	const n = 40
	for i := 1; i <= n; i++ {
		ev.TryEnd(ctx, engine.TryEnd{Step: "s", Attempt: i, Status: 503})
		ev.Exchange(ctx, &engine.Exchange{Step: "s", Attempt: i, Method: "POST", URL: "https://p.example/x",
			RequestBody: body, Status: 503, ResponseBody: body})
	}
	ev.Exchange(ctx, &engine.Exchange{Step: "auth:token", Attempt: 1, Method: "POST", URL: "https://p.example/token"})
	now := time.Now()
	rec := NewRecord(ctx, Meta{ID: "l", Started: now, Finished: now},
		&engine.Result{Outcome: engine.Error, Steps: []engine.StepResult{{Name: "s", Attempts: n}}})
	if len(rec.Steps) != 1 || len(rec.Steps[0].Tries) != n {
		t.Fatalf("steps %+v", rec.Steps)
	}
	kept, size := 0, 0
	for i, try := range rec.Steps[0].Tries {
		if try.Request == nil {
			continue
		}
		if i != kept {
			t.Fatalf("try %d kept after a try without", i+1)
		}
		kept++
		if len(try.Request.Body) > MaxExchangeBody+40 || len(try.Response.Body) > MaxExchangeBody+40 {
			t.Fatalf("try %d: bodies of %d and %d bytes", i+1, len(try.Request.Body), len(try.Response.Body))
		}
		size += exchangeSize(try.Request, try.Response)
	}
	if kept == 0 || kept == n || size > MaxLeadExchanges {
		t.Fatalf("kept %d of %d tries, %d bytes (bound %d)", kept, n, size, MaxLeadExchanges)
	}
}

// TestTriesPerStep: tries of steps that ran side by side (a parallel group)
// land in their own steps in the order they ended, an exchange lands on its
// own step's try of that attempt, at most maxTries are kept a lead, and an
// integration that keeps failed leads' exchanges drops a successful one's.
func TestTriesPerStep(t *testing.T) {
	var ev Events
	run := func(keep steps.HistoryExchanges, outcome engine.Outcome, tries int) Record {
		ctx := WithTries(context.Background(), nil, keep)
		for i := 1; i <= tries; i++ {
			for _, s := range []string{"a", "b"} { // both end, then both exchanges come
				ev.TryEnd(ctx, engine.TryEnd{Step: s, Attempt: i, Status: 500 + i})
			}
			for _, s := range []string{"a", "b"} {
				ev.Exchange(ctx, &engine.Exchange{Step: s, Attempt: i, Method: "POST", URL: "https://p.example/" + s})
			}
		}
		now := time.Now()
		return NewRecord(ctx, Meta{ID: "l", Started: now, Finished: now}, &engine.Result{Outcome: outcome,
			Steps: []engine.StepResult{{Name: "b"}, {Name: "a"}, {Name: "c"}}})
	}
	rec := run(steps.HistoryExchangesFailed, engine.Failure, 2)
	if len(rec.Steps) != 3 || rec.Steps[2].Tries != nil {
		t.Fatalf("steps %+v", rec.Steps)
	}
	for _, st := range rec.Steps[:2] {
		if len(st.Tries) != 2 {
			t.Fatalf("step %s: tries %+v", st.Name, st.Tries)
		}
		for i, try := range st.Tries {
			if try.Attempt != i+1 || try.Status != 501+i || try.Request == nil || try.Request.URL != "https://p.example/"+st.Name {
				t.Fatalf("step %s try %d: %+v %+v", st.Name, i+1, try, try.Request)
			}
		}
	}
	if rec := run(steps.HistoryExchangesFailed, engine.Success, 1); rec.Steps[0].Tries[0].Request != nil || rec.Steps[1].Tries[0].Request != nil {
		t.Fatal("a successful lead kept its exchanges; the integration keeps failed leads' only")
	}
	if rec := run(steps.HistoryExchangesAll, engine.Success, 1); rec.Steps[0].Tries[0].Request == nil {
		t.Fatal("exchanges: all dropped a successful lead's exchanges")
	}
	rec = run(steps.HistoryExchangesNone, engine.Error, 50)
	if n := len(rec.Steps[0].Tries) + len(rec.Steps[1].Tries); n != maxTries {
		t.Fatalf("kept %d tries of 100, want the bound %d", n, maxTries)
	}
}
