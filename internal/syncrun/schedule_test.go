package syncrun

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/testkit"
	"github.com/plumbhq/plumb/source"
)

// scheduledTarget loads examples/actuallycare-sync with its schedule
// replaced by schedule (a YAML flow mapping).
func scheduledTarget(t *testing.T, schedule string) *Target {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "actuallycare-sync", "integration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^  schedule:.*\n(    .*\n)*`).ReplaceAllString(string(src), "  schedule: "+schedule+"\n")
	plan, err := engine.Parse("sync.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{Values: map[string]any{"api_key": "k", "crm_key": "k", "base_url": "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	spec, err := source.Compile(plan)
	if err != nil {
		t.Fatal(err)
	}
	_, _, sched := plan.SourceSection()
	if sched == nil {
		t.Fatal("no schedule compiled")
	}
	return &Target{Runner: r, Spec: spec, Sched: sched}
}

// recorder is a sync that takes no time: it notes when it ran and saves
// a finished state, as source.Sync does.
type recorder struct {
	mu   sync.Mutex
	runs []time.Time
}

func (rec *recorder) run(ctx context.Context, t *Target, store source.StateStore, opt source.Options, _ func(source.Record, *engine.Result) error) (*source.Report, error) {
	now := opt.Now()
	rec.mu.Lock()
	rec.runs = append(rec.runs, now)
	rec.mu.Unlock()
	st, err := store.Load(ctx, t.Spec.Key)
	if err != nil {
		return nil, err
	}
	st.Started, st.Updated, st.Finished, st.Ended = now, now, now, "complete"
	return &source.Report{Ended: "complete"}, store.Commit(ctx, t.Spec.Key, source.Commit{State: &st})
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.runs)
}

func (rec *recorder) last() time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.runs[len(rec.runs)-1]
}

// TestScheduleFakeClock: a nightly cron in America/New_York fires at
// 09:00 local on each side of the 2026 spring-forward change (14:00 UTC,
// then 13:00 UTC) and at no other time; after the service was down for
// three runs, its next start runs one sync at once — not three — and the
// schedule then goes on. The clock is a testkit.ManualClock; synctest
// tells when every goroutine is waiting on it.
func TestScheduleFakeClock(t *testing.T) {
	store, err := source.OpenStore(filepath.Join(t.TempDir(), "sync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	target := scheduledTarget(t, `{ cron: "0 9 * * *", timezone: America/New_York }`)
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewManualClock(time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC)) // noon in New York
		rec := &recorder{}
		start := func() *Manager {
			m := New(Config{Store: store, Clock: clock, run: rec.run})
			m.Set("actuallycare-sync", func() *Target { return target })
			synctest.Wait()
			return m
		}
		m := start()
		if n := rec.count(); n != 0 {
			t.Fatalf("%d syncs at start without a missed run, want 0", n)
		}
		// runs at the given UTC times, and not a second before each
		expect := func(times ...string) {
			t.Helper()
			for _, s := range times {
				want, _ := time.Parse(time.RFC3339, s)
				before := rec.count()
				clock.Advance(want.Sub(clock.Now()) - time.Second)
				synctest.Wait()
				if n := rec.count(); n != before {
					t.Fatalf("a sync at %s, before %s", rec.last().UTC(), want)
				}
				clock.Advance(time.Second)
				synctest.Wait()
				if n := rec.count(); n != before+1 || !rec.last().Equal(want) {
					t.Fatalf("at %s: %d syncs (last %s), want one more at %s", clock.Now().UTC(), n-before, rec.last().UTC(), want)
				}
			}
		}
		expect("2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z")
		st, err := m.Status(context.Background(), "actuallycare-sync")
		if err != nil || !st.NextRun.Equal(time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC)) || st.Running || st.Schedule != "cron 0 9 * * * America/New_York" {
			t.Errorf("status: %+v %v", st, err)
		}
		m.Close(context.Background())

		// down from March 9 13:00 UTC to March 12 20:00 UTC: the runs of
		// the 10th, 11th and 12th were missed
		clock.Advance(3*24*time.Hour + 7*time.Hour)
		before := rec.count()
		m = start()
		if n := rec.count() - before; n != 1 || !rec.last().Equal(clock.Now()) {
			t.Fatalf("after the outage: %d syncs at start, want exactly 1 at once", n)
		}
		expect("2026-03-13T13:00:00Z")
		m.Close(context.Background())
	})
}

// TestKilledSyncResumesAtOnce: a state that says a sync did not end
// (killed: ended empty; or cancelled by a shutdown with pages left) is
// gone on with at once, not at the next scheduled time; a sync that
// ended is not.
func TestKilledSyncResumesAtOnce(t *testing.T) {
	target := scheduledTarget(t, `{ cron: "0 9 * * *", timezone: America/New_York }`)
	for _, tc := range []struct {
		ended  string
		resume bool
		runs   int
	}{{"", true, 1}, {"", false, 1}, {"canceled", true, 1}, {"complete", false, 0}, {"error: page 3: 500", true, 0}} {
		store, err := source.OpenStore(filepath.Join(t.TempDir(), "sync.db"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Test(t, func(t *testing.T) {
			clock := testkit.NewManualClock(time.Date(2026, 3, 6, 17, 0, 0, 0, time.UTC))
			st := source.State{Started: clock.Now().Add(-time.Minute), Updated: clock.Now(), Ended: tc.ended}
			if tc.resume {
				st.Resume = &source.Resume{Pages: 3}
			}
			if err := store.Commit(context.Background(), target.Spec.Key, source.Commit{State: &st}); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			m := New(Config{Store: store, Clock: clock, run: rec.run})
			m.Set("actuallycare-sync", func() *Target { return target })
			synctest.Wait()
			if n := rec.count(); n != tc.runs {
				t.Errorf("ended %q, resume %v: %d syncs at start, want %d", tc.ended, tc.resume, n, tc.runs)
			}
			m.Close(context.Background())
		})
		store.Close()
	}
}
