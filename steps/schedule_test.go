package steps

import (
	"strings"
	"testing"
	"time"
)

const scheduleBase = `version: 1
name: s
source:
  request: { url: "http://127.0.0.1:1/p" }
  schedule: %s
steps:
  - name: a
    request: { url: "http://127.0.0.1:1/x" }
`

// TestScheduleShape: what the validator checks of source.schedule (the
// cron expression and the zone are the engine's: internal/schedule).
func TestScheduleShape(t *testing.T) {
	good := map[string]func(*Schedule) bool{
		`{ cron: "0 2 * * *", timezone: America/New_York, jitter: 5m }`: func(s *Schedule) bool {
			return s.Cron.Value == "0 2 * * *" && s.Timezone.Value == "America/New_York" && s.Jitter == 5*time.Minute
		},
		`{ every: 6h, missed: skip }`: func(s *Schedule) bool { return s.Every == 6*time.Hour && s.Missed.Value == "skip" },
	}
	for flow, ok := range good {
		in, err := parse("s.yaml", []byte(strings.Replace(scheduleBase, "%s", flow, 1)))
		if err != nil || !ok(in.Source.Schedule) {
			t.Errorf("%s: %v %+v", flow, err, in)
		}
	}
	for flow, want := range map[string]string{
		`{ timezone: UTC }`:                  "s.yaml:5:13: source: schedule needs exactly one of cron or every",
		`{ cron: "0 2 * * *", every: 1h }`:   "needs exactly one of cron or every",
		`{ every: 500ms }`:                   "every must be at least 1s",
		`{ every: 1h, timezone: UTC }`:       "s.yaml:5:36: source: schedule: timezone applies to cron",
		`{ every: 1h, jitter: 1h }`:          "jitter (1h0m0s) must be less than every (1h0m0s)",
		`{ cron: "0 2 * * *", jitter: -1s }`: "jitter: invalid duration",
		`{ cron: "0 2 * * *", missed: all }`: `s.yaml:5:42: source: schedule: unknown missed "all" (one of once, skip)`,
		`{ cron: "0 2 * * *", cron_tz: x }`:  "cron_tz",
	} {
		_, err := parse("s.yaml", []byte(strings.Replace(scheduleBase, "%s", flow, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", flow, err, want)
		}
	}
}
