package testcase

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestBackoffTakesNoTime: plumb test's clock never really sleeps — a case
// whose retries wait an hour each runs at once, and the waits still count
// as time passing for the engine (mutant fake-clock-sleeps). The limit only
// turns a real sleep into a failure instead of a hang.
func TestBackoffTakesNoTime(t *testing.T) {
	dir := write(t, map[string]string{"x.yaml": `version: 1
name: slow
settings: { base_url: { default: "https://api.example" } }
steps:
  - name: check
    request: { url: "{{settings.base_url}}/check" }
    retry: [ { on: [5xx], action: retry, max_attempts: 3, backoff: { initial: 1h, max: 1h, jitter: false } } ]
    capture: { ok: { json: ok } }
`, "x.test.yaml": `tests:
  - name: retried
    lead: {}
    responses:
      check:
        - { status: 503 }
        - { status: 503 }
        - { body: { ok: true } }
    expect:
      outcome: success
      attempts: { check: 3 }
`})
	l, err := Load(filepath.Join(dir, "x.yaml"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s := l.Suites[0]
	done := make(chan *CaseResult, 1)
	go func() { done <- s.RunCase(context.Background(), s.Cases[0], Options{}) }()
	select {
	case r := <-done:
		if !r.Passed {
			t.Fatalf("case failed:\n%s", failures(r))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("two 1h backoff waits were really waited (the fake clock slept)")
	}
}

// TestFakeClockMovesOnlyWhenSleeping checks the clock itself: Sleep returns
// at once and moves Now by the wait; a cancelled context is reported.
func TestFakeClockMovesOnlyWhenSleeping(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &fakeClock{now: start}
	slept := make(chan error, 1)
	go func() { slept <- c.Sleep(context.Background(), 90*time.Minute) }()
	select {
	case err := <-slept:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Sleep(90m) really waited")
	}
	if got := c.Now().Sub(start); got != 90*time.Minute {
		t.Fatalf("clock moved %s, want 1h30m", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); err == nil || c.Now().Sub(start) != 90*time.Minute {
		t.Fatalf("sleep on a cancelled context: err %v, clock at +%s", err, c.Now().Sub(start))
	}
}
