package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/steps"
)

// parse reads a schedule: written in YAML flow style, as a file has it.
func parse(t *testing.T, flow string) *steps.Schedule {
	t.Helper()
	src := "version: 1\nname: x\nsource:\n  request: { url: \"http://127.0.0.1:1/p\" }\n  schedule: " + flow +
		"\nsteps:\n  - name: a\n    request: { url: \"http://127.0.0.1:1/x\" }\n"
	in, errs := steps.ParseAll("x.yaml", []byte(src))
	err := errs.Err()
	if err != nil {
		t.Fatal(err)
	}
	return in.Source.Schedule
}

func compile(t *testing.T, flow string) *Spec {
	t.Helper()
	sp, errs := Compile(parse(t, flow))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return sp
}

func ny(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestNextAcrossDST: cron times are wall-clock times in the zone, through
// both changes of 2026 in New York (March 8, November 1).
func TestNextAcrossDST(t *testing.T) {
	loc := ny(t)
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		cron, from string
		want       []string // UTC
	}{
		// 09:00 every day: 14:00 UTC in EST, 13:00 UTC in EDT
		{"0 9 * * *", "2026-03-06T15:00:00Z", []string{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"}},
		{"0 9 * * *", "2026-10-30T15:00:00Z", []string{"2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"}},
		// 02:30 does not exist on March 8: it runs at 07:30 UTC (03:30 EDT), once
		{"30 2 * * *", "2026-03-07T12:00:00Z", []string{"2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"}},
		// 01:30 happens twice on November 1: it runs once, at the first (EDT)
		{"30 1 * * *", "2026-10-31T12:00:00Z", []string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		// hourly through the repeated hour: each wall-clock hour once
		{"0 * * * *", "2026-11-01T04:30:00Z", []string{"2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"}},
		// from inside the second pass of the repeated hour: its times were
		// run in the first pass; never a time before the start
		{"*/20 * * * *", "2026-11-01T06:05:00Z", []string{"2026-11-01T07:00:00Z", "2026-11-01T07:20:00Z"}},
		// hourly through the skipped hour
		{"0 * * * *", "2026-03-08T06:30:00Z", []string{"2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
	} {
		sp := compile(t, `{ cron: "`+tc.cron+`", timezone: America/New_York }`)
		at := utc(tc.from)
		for _, w := range tc.want {
			at = sp.Next(at)
			if !at.Equal(utc(w)) {
				t.Errorf("%s from %s: next %s (%s), want %s", tc.cron, tc.from, at.UTC().Format(time.RFC3339), at.In(loc).Format("15:04 MST"), w)
				break
			}
		}
	}
}

// TestDue: a run missed before the scheduler started is due at once
// (missed: once) — one run, not one per missed time — or skipped to the
// next time after the start (missed: skip).
func TestDue(t *testing.T) {
	loc := ny(t)
	last := time.Date(2026, 3, 1, 9, 0, 0, 0, loc)   // the last run
	since := time.Date(2026, 3, 5, 12, 0, 0, 0, loc) // four runs were missed
	once := compile(t, `{ cron: "0 9 * * *", timezone: America/New_York }`)
	if got := once.Due(last, since); !got.Before(since) {
		t.Errorf("missed: once: due %s, want before the start %s (at once)", got, since)
	}
	skip := compile(t, `{ cron: "0 9 * * *", timezone: America/New_York, missed: skip }`)
	if got, want := skip.Due(last, since), time.Date(2026, 3, 6, 9, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("missed: skip: due %s, want %s", got, want)
	}
	if got, want := once.Due(time.Time{}, since), time.Date(2026, 3, 6, 9, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("cron, never ran: due %s, want the first time after the start %s", got, want)
	}
	every := compile(t, `{ every: 1h }`)
	if got := every.Due(time.Time{}, since); !got.Equal(since) {
		t.Errorf("every, never ran: due %s, want at the start", got)
	}
	everySkip := compile(t, `{ every: 1h, missed: skip }`)
	if got, want := everySkip.Due(since.Add(-150*time.Minute), since), since.Add(30*time.Minute); !got.Equal(want) {
		t.Errorf("every, skip: due %s, want %s", got, want)
	}
	if got, want := every.Due(since.Add(-150*time.Minute), since), since.Add(-90*time.Minute); !got.Equal(want) {
		t.Errorf("every, once: due %s, want %s", got, want)
	}
}

// TestCompileErrors: what only the compiler can check is reported once,
// at the key's position.
func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{`{ cron: "0 2 * *" }`, "expected exactly 5 fields"},
		{`{ cron: "61 2 * * *" }`, "above maximum"},
		{`{ cron: "@every 1h" }`, "every:"},
		{`{ cron: "TZ=UTC 0 2 * * *" }`, "timezone:"},
		{`{ cron: "0 0 30 2 *" }`, "never runs"},
		{`{ cron: "0 2 * * *", timezone: Mars/Olympus }`, `unknown time zone "Mars/Olympus"`},
		{`{ cron: "0 2 * * *", timezone: Local }`, "not a zone name"},
	} {
		sp, errs := Compile(parse(t, tc.flow))
		if sp != nil || len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || errs[0].Pos.Line != 5 {
			t.Errorf("%s: %v, %v; want one error at line 5 with %q", tc.flow, sp, errs, tc.want)
		}
	}
}
