package source_test

import (
	"context"
	"errors"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/source"
)

// TestWriteErrorKind: a sync whose results cannot be written ends in
// error with Report.Err of kind ErrWriteResults (the CLI's hint depends
// on it, not on the message), wrapping the writer's error, its message
// unchanged.
func TestWriteErrorKind(t *testing.T) {
	h := newHarness(t)
	r, spec := h.bind()
	st, err := source.OpenStore(h.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	full := errors.New("disk full")
	rep, err := source.Sync(context.Background(), r, spec, st, source.Options{}, func(source.Record, *engine.Result) error {
		return full
	})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if rep.Ended != "error" || !errors.Is(rep.Err, source.ErrWriteResults) || !errors.Is(rep.Err, full) || rep.Err.Error() != "writing results: disk full" {
		t.Fatalf("ended %q, err %v", rep.Ended, rep.Err)
	}
}
