// Package queue is plumb's durable work queue and key-value layer, built on
// NATS JetStream.
//
// By default a Queue embeds a nats-server in the process (file storage
// under Config.DataDir/nats, no network listener, reached over an
// in-process connection, the directory locked against a second process).
// With Config.URLs it connects to an external NATS cluster instead; the
// code above the connection is the same.
//
// # What lives in JetStream
//
// For a queue named "plumb" (Config.Name):
//
//	stream PLUMB_JOBS   subjects plumb.jobs.<id>  work-queue retention: a job
//	                                              leaves the stream when acked
//	consumer workers    one durable pull consumer shared by every process:
//	                    each job goes to one worker at a time
//	stream PLUMB_DEAD   subjects plumb.dead.<id>  dead letters, one per id
//	stream PLUMB_LEDGER subject plumb.ledger      the sequence and id of every
//	                                              accepted job, TTL ResultTTL
//	KV plumb_results    job results, TTL Config.ResultTTL
//	KV plumb_status     per-job attempt bookkeeping (running, last error)
//	KV plumb_queue_lost jobs found lost from a damaged jobs stream
//	KV plumb_queue_probe the write that tells a full storage has recovered
//	KV plumb_<bucket>   buckets opened with Queue.KV by other subsystems
//
// Every stream and bucket has Config.Replicas replicas and file storage.
//
// # Delivery
//
// Delivery is at-least-once. Publish returns after JetStream acknowledged
// the stored job. Consume asks the server for as many jobs as it has idle
// workers and hands each to a Handler at once; while the handler runs, the
// queue tells the server the job is in progress every AckWait/3. The
// handler's result is stored (first result wins) and only then is the job
// acked, and the ack is confirmed by the server. A handler error or panic
// means a redelivery after a backoff (RetryDelay doubling up to
// MaxRetryDelay); a crash or lost connection means a redelivery after
// AckWait. After MaxDeliver deliveries the job goes to the dead-letter
// stream with its last error and is acked. Dead letters are listed with
// Dead and re-queued with Retry.
//
// A redelivered job whose result is already stored (the process died
// between storing the result and acking) is acked without running again,
// so after a crash only the jobs that were running at that moment run a
// second time: at most Workers per process. An embedded queue is its
// stream's only consumer, so Open hands the jobs a killed process left in
// flight back at once (the consumer is reset to its ack floor) instead of
// letting AckWait run out; on a cluster, where other processes may be
// running them, they come back after AckWait.
//
// # Faults
//
// Storage: a write the storage refuses (JetStream's insufficient
// resources) or, on the embedded server, one its store failed (a full
// disk: the server logs a write error and never answers) puts the queue in
// trouble: Publish and PublishAll refuse new jobs at once with ErrStorage,
// Consume fetches nothing new, and a finished job whose result (or dead
// letter) cannot be stored keeps it in memory and writes it again once the
// storage recovers — its handler does not run again. Every second a probe
// write checks for recovery; a failed embedded store is reopened (the
// server restarted in process) first, once the disk has room. An embedded
// queue also refuses new jobs before its storage is full (Writable). Faults
// reports it all.
//
// Lost data: every result and dead letter carries its job's stream
// sequence (HeaderSeq), and a ledger records each accepted job's sequence
// and id. Open compares the jobs stream with them: jobs above the
// consumer's ack floor that the stream no longer holds and that never
// finished are lost (Lost; an ERROR log; Status says StateLost).
//
// # Durability
//
// Embedded server: sync_always by default (Config.SyncInterval 0). Every
// write — a published job, a stored result, an ack that removes a job —
// is fsynced before the server acknowledges it (PublishAll's atomic batches
// are fsynced once per batch, before the commit is acknowledged), so an acknowledged Publish
// survives kill -9 and also an OS crash or power loss. The cost is one
// fsync per write (on the development machine: about 5,000 publishes/s
// one at a time, about 3,000 jobs/s through publish, result and ack). A
// positive SyncInterval trades the power-loss guarantee for speed (about
// 10x); kill -9 is still safe because the store writes to the OS before it
// acknowledges.
//
// Cluster: durability is the servers' own configuration. With Replicas 3 a
// write is acknowledged once a quorum of nodes has it, so losing one node
// loses nothing and work continues after a leader election (seconds). By
// default nats-server fsyncs on an interval (2 minutes) and relies on the
// replicas, so power loss on a majority at once can lose recent writes;
// run the servers with sync_interval: always to close that gap.
//
// The server's per-job delivery count lives in consumer state that is
// flushed lazily, so it can fall back after the server itself is killed.
// The queue therefore also records each attempt (with the job's stream
// sequence) in the status bucket and counts the larger of the two: a job
// that takes its process down with it still reaches MaxDeliver. Status
// writes are not waited for; one lost at a crash costs at most one extra
// attempt.
//
// # Scale-out
//
// Several processes Open the same queue on one cluster (same Name, same
// streams, same durable consumer) and Consume: JetStream hands each job to
// one of them. Results, status and dead letters are in JetStream, so any
// process answers Status, GetResult, Dead and Retry for any job. Processes
// should use the same Config; Open updates the consumer and buckets, so the
// last process to start wins on AckWait, MaxAckPending and TTLs.
//
// Package natstest starts embedded single nodes and N-node clusters on
// loopback for tests.
package queue
