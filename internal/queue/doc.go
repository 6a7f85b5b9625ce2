// Package queue is plumb's durable work queue and key-value layer, built on
// NATS JetStream.
//
// By default a Queue embeds a nats-server in the process (file storage
// under Config.DataDir/nats, no network listener, reached over an
// in-process connection, the directory locked against a second process).
// With Config.URLs it connects to an external NATS cluster instead; the
// code above the connection is the same.
//
// # What is kept where
//
// For a queue named "plumb" (Config.Name):
//
//	stream PLUMB_WORK   subjects plumb.work.<id>  the jobs; limits retention:
//	                                              jobs the workers acked below
//	                                              their ack floor are purged
//	                                              every second (purge.go)
//	consumer workers    one durable pull consumer shared by every process:
//	                    each job goes to one worker at a time
//	records             one Record per job id: its state, attempts, last
//	                    error, result (record.go), kept Config.ResultTTL —
//	                    embedded: files under DataDir/leads (recordlog);
//	                    cluster: KV plumb_leads
//	stream PLUMB_DEAD   subjects plumb.dead.<id>  dead letters, one per id
//	stream PLUMB_LEDGER subject plumb.ledger      the sequence and id of every
//	                                              accepted job, TTL ResultTTL
//	KV plumb_queue_lost jobs found lost from a damaged jobs stream
//	KV plumb_queue_probe the write that tells a full storage has recovered
//	KV plumb_<bucket>   buckets opened with Queue.KV by other subsystems
//
// Every stream and bucket has Config.Replicas replicas and file storage.
// A data directory (or cluster) of a version before records holds a work
// queue stream PLUMB_JOBS instead: Open moves its jobs to PLUMB_WORK and
// deletes it; the results of that version (KV plumb_results) are still
// read until they expire.
//
// # Delivery
//
// Delivery is at-least-once. Publish returns after JetStream acknowledged
// the stored job. Consume asks the server for as many jobs as it has idle
// workers and hands each to a Handler at once; while the handler runs, the
// queue tells the server the job is in progress every AckWait/5, so a
// process that dies or is cut off has its jobs redelivered AckWait (5s)
// later — on a cluster to another instance, or to itself restarted.
//
// Group commit (commit.go): the handler's result goes into the job's
// record, which the worker hands to the committer; the committer stores
// the records of the jobs that finished together in one write — one fsync
// for all of them — and only then acks their jobs. It waits for company
// only while other handlers are running, at most Config.CommitWait, and
// writes at most Config.CommitBatch records at once. A worker takes its
// next job once its record is stored, so the jobs run but not stored at a
// crash are at most Workers per process. The first result stored for a
// job id stands (the writes are conditional on the record's revision).
//
// A handler error or panic means a redelivery after a backoff (RetryDelay
// doubling up to MaxRetryDelay), recorded first (the next attempt reads
// the last error from the record); a crash or lost connection means a
// redelivery after AckWait. After MaxDeliver deliveries the job goes to
// the dead-letter stream with its last error and is acked. Dead letters
// are listed with Dead and re-queued with Retry.
//
// A redelivered job whose record says done (the process died between
// storing the record and acking) is acked without running again, so after
// a crash only the jobs that were running or waiting for their write at
// that moment run a second time. Jobs stored before this process opened
// the queue get the same check at their first delivery: an embedded
// server killed with the process can lose the acks of its last moments
// (consumer state is written lazily). An embedded queue is its stream's
// only consumer, so Open hands the jobs a killed process left in flight
// back at once (the consumer is reset to its ack floor) instead of letting
// AckWait run out; on a cluster, where other processes may be running
// them, they come back after AckWait.
//
// # Faults
//
// Storage: a write the storage refuses (JetStream's insufficient
// resources, a full disk under the record files) or, on the embedded
// server, one its store failed (a full disk: the server logs a write error
// and never answers) puts the queue in trouble: Publish and PublishAll
// refuse new jobs at once with ErrStorage, Consume fetches nothing new, and
// a finished job whose record (or dead letter) cannot be stored keeps it in
// memory and writes it again once the storage recovers — its handler does
// not run again. Every second a probe write checks for recovery; a failed
// embedded store is reopened (the server restarted in process) first, once
// the disk has room. An embedded queue also refuses new jobs before its
// storage is full (Writable); its jobs already accepted keep running, their
// records being outside JetStream's limit. Faults reports it all.
//
// Lost data: every done record and dead letter carries its job's stream
// sequence, and a ledger records each accepted job's sequence and id. Open
// compares the jobs stream with them: jobs above the consumer's ack floor
// that the stream no longer holds and that never finished are lost (Lost;
// an ERROR log; Status says StateLost).
//
// # Durability
//
// Embedded server: sync_always by default (Config.SyncInterval 0). Every
// JetStream write — a published job, a dead letter, a purge — is fsynced
// before the server acknowledges it (PublishAll's atomic batches once per
// batch), and a batch of records is fdatasync'ed before its jobs are acked,
// so an acknowledged Publish and a stored result survive kill -9 and also
// an OS crash or power loss. An ack itself writes nothing to the stream
// (consumer state, written lazily): one it loses only brings the job back
// to a worker that finds its record done. Measured on the development
// machine: about 0.14 fsyncs per job through publish (NDJSON bodies of
// 100), run, record and ack, against 3.2 before group commit. A positive
// SyncInterval trades the power-loss guarantee of JetStream writes for
// speed; kill -9 is still safe because the store writes to the OS before
// it acknowledges.
//
// Cluster: durability is the servers' own configuration. With Replicas 3 a
// write is acknowledged once a quorum of nodes has it, so losing one node
// loses nothing and work continues after a leader election (seconds). By
// default nats-server fsyncs on an interval (2 minutes) and relies on the
// replicas, so power loss on a majority at once can lose recent writes;
// run the servers with sync_interval: always to close that gap.
//
// # Scale-out
//
// Several processes Open the same queue on one cluster (same Name, same
// streams, same durable consumer) and Consume: JetStream hands each job to
// one of them. Records and dead letters are in JetStream, so any process
// answers Status, GetResult, Dead and Retry for any job. Processes should
// use the same Config; Open updates the consumer and buckets, so the last
// process to start wins on AckWait, MaxAckPending and TTLs.
//
// Package natstest starts embedded single nodes and N-node clusters on
// loopback for tests.
package queue
