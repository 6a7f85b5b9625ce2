package history

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/plumbhq/plumb/internal/queue/natstest"
)

// TestNATSLog: two views on a real JetStream stream agree; a view
// reopened resumes after what it applied (the ordered consumer starts at
// the next sequence), so nothing is applied twice.
func TestNATSLog(t *testing.T) {
	log := testNATSLog(t)
	pathA := filepath.Join(t.TempDir(), "a.db")
	cfgA := Config{Path: pathA, Log: log, Linger: time.Millisecond}
	a, err := Open(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b := member(t, log, filepath.Join(t.TempDir(), "b.db"), nil)
	if err := a.Begin(Batch{ID: "N", Integration: "crm"}, []string{"n1", "n2"}, ""); err != nil {
		t.Fatal(err)
	}
	b.Add(rec("n1", "crm", "success", time.Now()))
	settle(a, b)
	if bt := mustBatch(t, a, "N"); bt.State["done"] != 1 {
		t.Fatalf("A: %+v", bt.State)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.Add(rec("n2", "crm", "failure", time.Now()))
	b.Flush()
	a, err = Open(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Flush()
	bt := mustBatch(t, a, "N")
	if !bt.Done || bt.Outcomes["success"] != 1 || bt.Outcomes["failure"] != 1 {
		t.Fatalf("A reopened: %+v", bt)
	}
	if s := a.Stats(); s.Written != 1 || s.Duplicates != 0 || s.Redelivered != 0 {
		t.Fatalf("A reopened applied %+v; want n2 only", s)
	}
}

// testNATSLog is a NATSLog on a stream of a new NATS server.
func testNATSLog(t testing.TB) *NATSLog {
	node := natstest.StartServer(t)
	nc, err := nats.Connect(node.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T_HISTORY", Subjects: []string{"t.history.>"}})
	if err != nil {
		t.Fatal(err)
	}
	return NewNATSLog(js, st, "t.history.ops")
}
