package syncrun

import (
	"context"
	"fmt"
	"time"

	"github.com/plumbhq/plumb/source"
)

// Status is what GET /v1/integrations/{name}/sync answers.
type Status struct {
	Integration string `json:"integration"`
	// Source is the state's key (integration/source).
	Source string `json:"source"`
	// Schedule describes the schedule ("" : on trigger only).
	Schedule string `json:"schedule,omitempty"`
	// Running: a sync of the source runs, on this instance (Here) or on
	// the one Holder names (the lease's holder).
	Running bool   `json:"running"`
	Here    bool   `json:"here,omitempty"`
	Holder  string `json:"holder,omitempty"`
	// NextRun is when the next scheduled sync starts (jitter included);
	// zero without a schedule, or while one runs.
	NextRun time.Time `json:"next_run,omitzero"`
	// LastRun is when the last sync started; LastEnded when and how it
	// ended ("" while it runs, or after it was killed).
	LastRun   time.Time `json:"last_run,omitzero"`
	LastEnded time.Time `json:"last_ended,omitzero"`
	Ended     string    `json:"ended,omitempty"`
	// Last counts the pages, records and errors of the last sync, Total
	// those of every sync.
	Last  source.Counts `json:"last"`
	Total source.Counts `json:"total"`
	// Cursor is the saved incremental cursor; Resume the page an
	// unfinished sync goes on at (0: none).
	Cursor any `json:"cursor,omitempty"`
	Resume int `json:"resume_page,omitempty"`
	// Retry counts the records in the retry list.
	Retry int `json:"retry"`
	// Updated is when the state was last saved.
	Updated time.Time `json:"updated,omitzero"`
	// Error is this instance's last problem running the source (the
	// state store or the lease unreachable), if any since.
	Error string `json:"error,omitempty"`
}

// Status reads the state of name's source.
func (m *Manager) Status(ctx context.Context, name string) (Status, error) {
	l := m.lookup(name)
	if l == nil {
		return Status{}, fmt.Errorf("%s: %w", name, ErrUnknown)
	}
	t := l.target()
	if t == nil {
		return Status{}, fmt.Errorf("%s: %w (the integration is not loaded)", name, ErrUnknown)
	}
	key := t.Spec.Key
	st, err := m.cfg.Store.Load(ctx, key)
	if err != nil {
		return Status{}, err
	}
	retry, err := m.cfg.Store.RetryCount(ctx, key)
	if err != nil {
		return Status{}, err
	}
	holder, err := m.cfg.Leases.Holder(ctx, key)
	if err != nil {
		return Status{}, err
	}
	redact := t.Runner.Redact
	out := Status{Integration: name, Source: key, Holder: holder, Running: holder != "",
		LastRun: st.Started, LastEnded: st.Finished, Ended: redact(st.Ended), Last: st.Last, Total: st.Total,
		Cursor: st.Cursor, Retry: retry, Updated: st.Updated}
	if st.Ended == "" {
		out.LastEnded = time.Time{}
	}
	if st.Resume != nil {
		out.Resume = st.Resume.Pages + 1
	}
	if t.Sched != nil {
		out.Schedule = t.Sched.String()
	}
	l.mu.Lock()
	out.Here, out.Error = l.running, l.lastErr
	if !out.Running && t.Sched != nil {
		out.NextRun = l.next
	}
	l.mu.Unlock()
	return out, nil
}
