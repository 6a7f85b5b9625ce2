package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/testkit"
)

// TestRunAllCompletesBatches: 12 leads through a batch step of size 5 that
// would wait an hour for a batch to fill: RunAll sends 5, 5 and then the
// last 2 as soon as no more leads are coming, not when the batch's wait is
// over (Concurrency is raised to the batch size, so even Concurrency 1
// fills batches). In a synctest bubble an hour passes at once when nothing else can run, so a missing end-of-input send
// shows as an hour gone by on the bubble's clock: the test fails at once,
// with that message, instead of hanging.
func TestRunAllCompletesBatches(t *testing.T) {
	for _, c := range []int{1, 16} {
		t.Run(fmt.Sprint("concurrency=", c), func(t *testing.T) { synctest.Test(t, func(t *testing.T) { completeBatches(t, c) }) })
	}
}

func completeBatches(t *testing.T, concurrency int) {
	partner := testkit.NewBatchHandler()
	p := mustParse(t, batchPlan, engine.WithTransport(func(http.RoundTripper) http.RoundTripper {
		return testkit.Transport{Handler: partner}
	}))
	if p.BatchSize() != 5 {
		t.Fatalf("BatchSize %d", p.BatchSize())
	}
	r := mustBind(t, p, map[string]any{"base_url": "http://partner.test"})
	leads := make([]map[string]any, 12)
	for k := range leads {
		leads[k] = map[string]any{"id": fmt.Sprint("lead-", k)}
	}
	start := time.Now()
	for k, res := range collect(t, r.RunAll(context.Background(), engine.Leads(leads), engine.RunAllOptions{Concurrency: concurrency})) {
		if res.Outcome != engine.Success || res.Lead["ok"] != true {
			t.Fatalf("lead %d: %s %q", k, res.Outcome, res.Reason)
		}
	}
	if waited := time.Since(start); waited >= time.Hour {
		t.Fatalf("the last leads waited %s for their batch to fill: RunAll did not send the partial batch at the end of input", waited)
	}
	sizes := partner.Sizes()
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{2, 5, 5}) {
		t.Fatalf("batch sizes %v, want 5, 5 and 2", sizes)
	}
}
