// Package schedule is when a source's sync runs (source.schedule: in the
// file format): a cron expression read in a time zone, or an interval,
// with jitter and a policy for runs missed while the service was down.
// The engine compiles a source's schedule once, with the rest of its
// plan (Compile); plumb serve's sync runner (internal/syncrun) asks it
// when the next run is due (Spec.Due) and waits on a Clock it is given.
//
// Cron times are wall-clock times in the zone. A time that a
// daylight-saving change skips (02:30 on the spring-forward night in
// America/New_York) runs when it would have with the old offset (03:30
// on the new clock); a time the change repeats (01:30 on the fall-back
// night) runs once, at its first occurrence.
package schedule

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	_ "time/tzdata" // zones resolve on machines without a zoneinfo database

	"github.com/robfig/cron/v3"

	"github.com/plumbhq/plumb/steps"
)

// cronParser reads five-field expressions and the descriptors (@daily);
// @every is refused (every: says it).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Spec is a compiled schedule.
type Spec struct {
	cron   *cron.SpecSchedule // nil for an interval; read in UTC as wall-clock times
	loc    *time.Location
	every  time.Duration
	jitter time.Duration
	missed steps.ScheduleMissed
	text   string
}

// Compile compiles a source's schedule: (nil, nil) without one. The
// steps validator has checked its shape (one of cron and every, jitter);
// Compile reports the cron expression and the time zone, positioned.
func Compile(s *steps.Schedule) (*Spec, steps.ErrorList) {
	if s == nil {
		return nil, nil
	}
	var errs steps.ErrorList
	sp := &Spec{every: s.Every, jitter: max(s.Jitter, 0), missed: steps.ScheduleMissed(s.Missed.Value), loc: time.UTC}
	if sp.missed == "" {
		sp.missed = steps.ScheduleMisses.Default
	}
	if s.Timezone.IsSet() {
		loc, err := loadZone(s.Timezone.Value)
		if err != nil {
			errs.Add(s.Timezone.Pos, "an IANA zone name such as America/New_York, Europe/Paris or UTC", "source: schedule: timezone: %v", err)
		}
		sp.loc = loc
	}
	if s.Cron.IsSet() {
		c, err := parseCron(s.Cron.Value)
		if err != nil {
			errs.Add(s.Cron.Pos, `five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *", or @hourly, @daily, @weekly, @monthly`, "source: schedule: cron %q: %v", s.Cron.Value, err)
		} else if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
			errs.Add(s.Cron.Pos, "", "source: schedule: cron %q never runs (a day that no month has?)", s.Cron.Value)
		}
		sp.cron = c
		sp.text = "cron " + strings.TrimSpace(s.Cron.Value) + " " + sp.loc.String()
	} else {
		sp.text = "every " + s.Every.String()
	}
	if len(errs) > 0 || (sp.cron == nil && sp.every <= 0) {
		return nil, errs
	}
	return sp, nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not a zone name: give the zone, e.g. America/New_York", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

func parseCron(expr string) (*cron.SpecSchedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, fmt.Errorf("give the zone in timezone:, not in the expression")
	case strings.HasPrefix(expr, "@every"):
		return nil, fmt.Errorf("give an interval as every: (e.g. every: 6h)")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, err
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("not a calendar schedule")
	}
	spec.Location = time.UTC // Next steps through wall-clock times (see next)
	return spec, nil
}

// String describes the schedule: "cron 0 2 * * * America/New_York" or
// "every 6h0m0s".
func (s *Spec) String() string { return s.text }

// Jitter is the most a run is delayed by.
func (s *Spec) Jitter() time.Duration { return s.jitter }

// Missed is the policy for runs missed while the service was down.
func (s *Spec) Missed() steps.ScheduleMissed { return s.missed }

// Next is the first scheduled time after t (zero: never).
func (s *Spec) Next(t time.Time) time.Time {
	if s.cron == nil {
		return t.Add(s.every)
	}
	return s.nextCron(t)
}

// nextCron steps through the zone's wall-clock times: t's wall clock is
// read as if in UTC (no daylight-saving jumps), the cron's next wall-clock
// time is found there and put back in the zone. time.Date puts a time
// that a change skips at the old offset and a repeated one at its first
// occurrence (a skipped one is put at the offset before the change); a
// result not after t (a repeated hour's second pass) is stepped over.
func (s *Spec) nextCron(t time.Time) time.Time {
	w := wall(t.In(s.loc))
	for range 10000 {
		nw := s.cron.Next(w)
		if nw.IsZero() {
			return time.Time{}
		}
		n := time.Date(nw.Year(), nw.Month(), nw.Day(), nw.Hour(), nw.Minute(), nw.Second(), 0, s.loc)
		if !wall(n).Equal(nw) {
			// a time the change skips: at the offset before the change
			_, off := n.Add(-12 * time.Hour).Zone()
			n = nw.Add(-time.Duration(off) * time.Second).In(s.loc)
		}
		if n.After(t) {
			return n
		}
		w = nw
	}
	return time.Time{}
}

// wall is t's wall-clock reading as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// Due is when the run after the one that started at last is due, for a
// scheduler that began watching at since (zero last: no run yet). A run
// that fell before since was missed: with missed: once it is due at once
// (one run, however many were missed), with skip the next scheduled time
// after since is. Without a run yet, an interval is due at since and a
// cron at its first time after since.
func (s *Spec) Due(last, since time.Time) time.Time {
	if last.IsZero() {
		if s.cron == nil {
			return since
		}
		return s.Next(since)
	}
	due := s.Next(last)
	if due.IsZero() || !due.Before(since) || s.missed != steps.MissedSkip {
		return due
	}
	if s.cron == nil { // the next multiple of every after since
		n := since.Sub(last)/s.every + 1
		return last.Add(n * s.every)
	}
	return s.Next(since)
}

// Delay draws a run's jitter: uniform in [0, Jitter) from r (nil: the
// package's source).
func (s *Spec) Delay(r *rand.Rand) time.Duration {
	if s.jitter <= 0 {
		return 0
	}
	if r == nil {
		return rand.N(s.jitter)
	}
	return time.Duration(r.Int64N(int64(s.jitter)))
}

// Clock tells the time and waits; engine.Clock and testkit.ManualClock
// are Clocks.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
