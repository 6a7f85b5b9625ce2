package serve

// Sources inside the service: every integration with a source: section
// gets a sync loop (internal/syncrun) once the server starts; those with
// a schedule: sync on it, every one on POST /v1/integrations/{name}/sync.
// The state is kept where the queue is: a bbolt file under --data for
// the embedded queue (DataDir/sync.db, readable by plumb sync status
// while the service runs), JetStream KV on a NATS cluster, where a lease
// in the cluster's KV lets one instance sync a source at a time.
// docs/service.md#scheduled-syncs is the reference.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/syncrun"
	"github.com/plumbhq/plumb/internal/syncstate"
	"github.com/plumbhq/plumb/source"
)

// Error codes of the sync routes.
const (
	CodeNoSource     = "no_source"
	CodeSyncRunning  = "sync_running"
	CodeConfirm      = "confirmation_required"
	CodeSyncStateErr = "sync_state_error"
)

// SyncStateFile is the bbolt file under Config.DataDir that keeps the
// sync state when the queue is embedded.
const SyncStateFile = "sync.db"

// syncState is the server's sync machinery (nil manager until Start).
type syncState struct {
	mu      sync.Mutex
	manager *syncrun.Manager
	file    *source.Store // the bbolt store, closed at shutdown
}

// startSyncs opens the sync state where the queue keeps its data and
// starts a loop per integration with a source.
func (s *Server) startSyncs() error {
	cfg := syncrun.Config{Concurrency: s.cfg.Concurrency, Logger: s.log.With("component", "sync"),
		Emit: func(name string, _ source.Record, res *engine.Result) {
			s.metrics.observe(name, "source", res)
			s.recordSync(name, res)
		}}
	var file *source.Store
	if c := s.cluster; c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		kv, err := s.q.Load().KV(ctx, "syncstate", 0)
		if err != nil {
			return fmt.Errorf("serve: sync state: %w", err)
		}
		st := syncstate.New(kv)
		cfg.Store, cfg.Session, cfg.Leases = st, st.Session, clusterLeases{c}
	} else {
		var err error
		if file, err = source.OpenStore(filepath.Join(s.cfg.DataDir, SyncStateFile)); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		cfg.Store = file
	}
	s.syncs.mu.Lock()
	s.syncs.manager, s.syncs.file = syncrun.New(cfg), file
	s.syncs.mu.Unlock()
	s.refreshSyncs()
	return nil
}

// refreshSyncs gives every loaded integration with a source its loop and
// drops the loops of the others (after a Reload).
func (s *Server) refreshSyncs() {
	s.syncs.mu.Lock()
	m := s.syncs.manager
	s.syncs.mu.Unlock()
	if m == nil {
		return
	}
	keep := map[string]bool{}
	for _, e := range s.reg.list() {
		r := e.current()
		if r == nil || !r.Plan().HasSource() {
			continue
		}
		name := r.Plan().Name()
		keep[name] = true
		m.Set(name, s.syncTarget(name))
	}
	for _, name := range m.Names() {
		if !keep[name] {
			m.Remove(name)
		}
	}
}

// syncTarget returns what name's source syncs with at each run: its
// current runner (the one lead runs use, so its rate budgets, tokens and
// limits) and its source and schedule, compiled from that runner's plan.
func (s *Server) syncTarget(name string) func() *syncrun.Target {
	var mu sync.Mutex
	var last *syncrun.Target
	return func() *syncrun.Target {
		e := s.reg.lookup(name)
		if e == nil {
			return nil
		}
		r := e.current()
		if r == nil || !r.Plan().HasSource() {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if last != nil && last.Runner == r {
			return last
		}
		spec, err := source.Compile(r.Plan())
		if err != nil {
			s.log.Error("sync: compiling the source", "integration", name, "err", err)
			return nil
		}
		_, _, sched := r.Plan().SourceSection()
		last = &syncrun.Target{Runner: r, Spec: spec, Sched: sched}
		return last
	}
}

// stopSyncs stops the loops (running syncs stop after their page, or are
// cancelled when ctx ends) and closes the state file.
func (s *Server) stopSyncs(ctx context.Context) {
	s.syncs.mu.Lock()
	m, file := s.syncs.manager, s.syncs.file
	s.syncs.manager, s.syncs.file = nil, nil
	s.syncs.mu.Unlock()
	if m != nil {
		m.Close(ctx)
	}
	if file != nil {
		if err := file.Close(); err != nil {
			s.log.Warn("closing the sync state", "err", err)
		}
	}
}

// SyncRequest is the body of POST /v1/integrations/{name}/sync (optional).
type SyncRequest struct {
	// Mode is "" (go on, as the schedule would), "full" (read every
	// record again) or "reset" (forget the state and the retry list).
	Mode string `json:"mode"`
	// Confirm must be the integration's name for full and reset: both
	// send every record through the steps again.
	Confirm string `json:"confirm"`
}

// syncRoute is GET (status) and POST (trigger) of a source's sync.
func (s *Server) syncRoute(w http.ResponseWriter, r *http.Request) {
	name, ok := s.integration(w, r)
	if !ok {
		return
	}
	s.syncs.mu.Lock()
	m := s.syncs.manager
	s.syncs.mu.Unlock()
	if m == nil {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the sync runner is not running (the server is starting or stopping)")
		return
	}
	if r.Method == http.MethodPost {
		s.triggerSync(w, r, m, name)
		return
	}
	st, err := m.Status(r.Context(), name)
	if s.syncError(w, name, err) {
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) triggerSync(w http.ResponseWriter, r *http.Request, m *syncrun.Manager, name string) {
	var req SyncRequest
	b, ok := s.body(w, r)
	if !ok {
		return
	}
	if len(b) > 0 {
		if _, ok := mediaType(w, r, "application/json"); !ok {
			return
		}
		if err := json.Unmarshal(b, &req); err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidJSON, "the body must be {\"mode\": \"\"|\"full\"|\"reset\", \"confirm\": NAME}: "+err.Error())
			return
		}
	}
	mode := syncrun.Mode(req.Mode)
	switch mode {
	case syncrun.ModeNormal:
	case syncrun.ModeFull, syncrun.ModeReset:
		if req.Confirm != name {
			what := "reads every record again from incremental.start"
			if mode == syncrun.ModeReset {
				what = "forgets the saved cursor, position and retry list, then reads every record again"
			}
			writeError(w, http.StatusBadRequest, CodeConfirm, fmt.Sprintf("mode %s %s and sends each through the steps (writes at the partner); confirm with \"confirm\": %q", mode, what, name))
			return
		}
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("unknown mode %q: \"\" (go on), \"full\" or \"reset\"", req.Mode))
		return
	}
	if s.syncError(w, name, m.Trigger(r.Context(), name, mode)) {
		return
	}
	st, err := m.Status(r.Context(), name)
	if s.syncError(w, name, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

// syncError answers err (false when nil).
func (s *Server) syncError(w http.ResponseWriter, name string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, syncrun.ErrUnknown):
		writeError(w, http.StatusNotFound, CodeNoSource, fmt.Sprintf("integration %q has no source: section to sync (or is not loaded)", name))
	case errors.Is(err, syncrun.ErrRunning):
		writeError(w, http.StatusConflict, CodeSyncRunning, fmt.Sprintf("a sync of %q is running; GET this route for its progress", name))
	default:
		s.log.Error("sync state", "integration", name, "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeSyncStateErr, "the sync state cannot be read or written now; try again (the service's log has the cause)")
	}
	return true
}

// clusterLeases are the sources' leases in the cluster's KV (one
// instance syncs a source at a time; see cluster.Cluster.TryLease).
type clusterLeases struct{ c *cluster.Cluster }

func (l clusterLeases) Acquire(ctx context.Context, key string) (syncrun.Lease, error) {
	lease, err := l.c.TryLease(ctx, "sync/"+key)
	if errors.Is(err, cluster.ErrHeld) {
		return nil, syncrun.ErrHeld
	}
	if err != nil {
		return nil, err
	}
	return lease, nil
}

func (l clusterLeases) Holder(ctx context.Context, key string) (string, error) {
	return l.c.LeaseHolder(ctx, "sync/"+key)
}
