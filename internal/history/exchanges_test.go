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
