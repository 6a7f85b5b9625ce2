package queue

import (
	"sync/atomic"
	"time"
)

// faultCounters count the queue's brushes with its storage, for Faults.
type faultCounters struct {
	troubles      atomic.Uint64 // times the storage fell into trouble
	restarts      atomic.Uint64 // restarts of the embedded server
	refused       atomic.Uint64 // jobs refused with ErrStorage
	resultRetries atomic.Uint64 // result writes that failed and were retried
	deadRetries   atomic.Uint64 // dead-letter writes that failed and were retried
	held          atomic.Int64  // results (or dead letters) waiting to be stored
	unstored      atomic.Uint64 // finished jobs handed back unstored at a shutdown
	probes        atomic.Uint64 // probes that found the storage still in trouble
}

// Faults is a snapshot of the queue's storage health and fault counters.
// It costs no round trip.
type Faults struct {
	// Storage is nil while the queue takes new jobs, else why not
	// (wrapping ErrStorage); see Writable.
	Storage error
	// Troubles counts the times a write found the storage full or failing.
	Troubles uint64
	// Restarts counts restarts of the embedded server after a store
	// reported a write error.
	Restarts uint64
	// Refused counts jobs Publish and PublishAll refused with ErrStorage.
	Refused uint64
	// ResultRetries counts writes of a job's result (or dead letter) that
	// failed and were retried; the job's handler did not run again.
	ResultRetries uint64
	// DeadRetries counts failed writes of dead letters.
	DeadRetries uint64
	// Held is the number of finished jobs whose result (or dead letter)
	// waits, in memory, for the storage to take it.
	Held int64
	// Unstored counts finished jobs whose result could not be stored before
	// a shutdown; they run again at the next start.
	Unstored uint64
	// Lost is what Open found lost from a damaged jobs stream.
	Lost LostReport
}

// Faults returns the queue's storage health and fault counters.
func (q *Queue) Faults() Faults {
	return Faults{
		Storage:       q.Writable(),
		Troubles:      q.faults.troubles.Load(),
		Restarts:      q.faults.restarts.Load(),
		Refused:       q.faults.refused.Load(),
		ResultRetries: q.faults.resultRetries.Load(),
		DeadRetries:   q.faults.deadRetries.Load(),
		Held:          q.faults.held.Load(),
		Unstored:      q.faults.unstored.Load(),
		Lost:          q.lost,
	}
}

// heldRetryEvery bounds the wait between two writes of a held result when
// no probe reports the storage healthy (a write that failed without
// putting the storage in trouble: a cluster electing a leader).
const heldRetryEvery = 5 * time.Second
