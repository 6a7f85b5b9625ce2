package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Record is what the queue keeps about one job: one record per job id,
// holding where the job is and, once it is done, its result. Workers write
// records in group commits (commit.go); Status and GetResult read them.
// Fields beyond the state describe the job (what it is, where it came
// from, when it ran), so that a record can also serve as the job's entry
// in a history.
type Record struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Seq is the job's sequence in the jobs stream: a record counts for the
	// job it names (a job published again under the same id has another).
	Seq uint64 `json:"seq"`
	// Attempts made so far (deliveries), when known.
	Attempts int `json:"attempts,omitempty"`
	// LastError of the last failed attempt.
	LastError   string `json:"last_error,omitempty"`
	Kind        Kind   `json:"kind,omitempty"`
	Integration string `json:"integration,omitempty"`
	// Enqueued is when the job was stored; Started when its last attempt
	// began; Updated when the record was written.
	Enqueued time.Time `json:"enqueued,omitzero"`
	Started  time.Time `json:"started,omitzero"`
	Updated  time.Time `json:"updated,omitzero"`
	// Meta holds what else describes the job (its source, the request or
	// batch that brought it); the queue stores it as given.
	Meta map[string]string `json:"meta,omitempty"`
	// Result is the handler's result, set once State is StateDone.
	Result []byte `json:"-"`
}

// maxLastError bounds Record.LastError.
const maxLastError = 4096

// encode is the stored form of a record: its fields as one line of JSON,
// a newline, then the result's bytes as they are.
func (r *Record) encode() ([]byte, error) {
	if len(r.LastError) > maxLastError {
		r.LastError = r.LastError[:maxLastError] + "…"
	}
	head, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("queue: record of %s: %w", r.ID, err)
	}
	out := make([]byte, 0, len(head)+1+len(r.Result))
	out = append(out, head...)
	out = append(out, '\n')
	return append(out, r.Result...), nil
}

// decodeRecord reads a record's stored form. The result aliases b.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	head, result, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return r, errors.New("queue: a stored record without its header line")
	}
	if err := json.Unmarshal(head, &r); err != nil {
		return r, fmt.Errorf("queue: a stored record: %w", err)
	}
	if r.State == StateDone {
		r.Result = result
	}
	return r, nil
}

// errConflict: a conditional write found the record changed since the
// revision it expected (another worker wrote it).
var errConflict = errors.New("queue: the record changed meanwhile")

// recordWrite is one record to store, conditionally: only if the id's
// record is still at revision prev (0: the id has none).
type recordWrite struct {
	rec  *Record
	prev uint64
	// fresh: the write is the first of a job stored since Open and run
	// once, so a store may trust prev 0 without looking far back
	fresh bool
	// set by put
	rev uint64
	err error
}

// records is where the queue keeps its records, one per job id.
type records interface {
	// get returns the record of id and its revision, or an error wrapping
	// ErrNotFound.
	get(ctx context.Context, id string) (Record, uint64, error)
	// put stores the writes, setting each one's rev, or its err: nil,
	// errConflict, or why it was not stored. Every write put reports
	// stored is durable when put returns.
	put(ctx context.Context, ws []*recordWrite)
	// finished calls fn, newest first, with the job sequence of each
	// record written since since, until fn returns false. A record
	// without a sequence (an older version's result) calls fn with 0.
	finished(ctx context.Context, since time.Time, fn func(seq uint64) bool) error
}
