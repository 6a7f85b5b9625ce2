package engine_test

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/plumbhq/plumb/engine"
)

// TestZeroValuesDoNotPanic calls every exported method of a zero Plan and
// a zero Runner (with zero arguments, a background context and one lead):
// none panics, and what runs or binds says ErrNotBound. A new method is
// covered by this test as soon as it exists.
func TestZeroValuesDoNotPanic(t *testing.T) {
	for _, v := range []any{&engine.Plan{}, &engine.Runner{}} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumMethod() {
			m := rv.Type().Method(i)
			if testShims[rv.Type().Elem().Name()+"."+m.Name] {
				continue
			}
			t.Run(rv.Type().Elem().Name()+"."+m.Name, func(t *testing.T) {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panics on a zero value: %v", p)
					}
				}()
				out := rv.Method(i).Call(args(m.Type))
				for _, o := range out {
					drain(t, o)
				}
			})
		}
	}
	if _, err := (&engine.Plan{}).Bind(engine.Config{}); !errors.Is(err, engine.ErrNotBound) {
		t.Errorf("Bind on a zero Plan: %v", err)
	}
	var r engine.Runner
	if res := r.Run(context.Background(), map[string]any{"a": 1.0}); res.Outcome != engine.Error || !errors.Is(res.Err, engine.ErrNotBound) || res.Lead["a"] != 1.0 {
		t.Errorf("Run on a zero Runner: %+v", res)
	}
	if _, err := r.RunStep(context.Background(), "s", nil, nil); !errors.Is(err, engine.ErrNotBound) {
		t.Errorf("RunStep on a zero Runner: %v", err)
	}
	if pg := r.FetchPage(context.Background(), nil, nil, ""); !errors.Is(pg.Err, engine.ErrNotBound) {
		t.Errorf("FetchPage on a zero Runner: %+v", pg)
	}
}

// testShims are methods the engine's own tests add (engine/shim_test.go),
// not part of the API.
var testShims = map[string]bool{"Plan.Run": true, "Plan.DryRun": true, "Plan.RunStep": true, "Runner.Flush": true}

// args are zero values for a method's parameters, but a live context and
// a sequence of one lead.
func args(ft reflect.Type) []reflect.Value {
	in := make([]reflect.Value, ft.NumIn()-1)
	for k := range in {
		pt := ft.In(k + 1)
		switch {
		case pt == reflect.TypeFor[context.Context]():
			in[k] = reflect.ValueOf(context.Background())
		case pt == reflect.TypeFor[iter.Seq2[map[string]any, error]]():
			in[k] = reflect.ValueOf(engine.Leads([]map[string]any{{"a": 1.0}}))
		default:
			in[k] = reflect.Zero(pt)
		}
	}
	return in
}

// drain runs what a method returned when it is a sequence of results, and
// checks each says ErrNotBound.
func drain(t *testing.T, o reflect.Value) {
	seq, ok := o.Interface().(iter.Seq2[int, *engine.Result])
	if !ok {
		return
	}
	n := 0
	for _, res := range seq {
		n++
		if !errors.Is(res.Err, engine.ErrNotBound) {
			t.Errorf("RunAll on a zero Runner: %+v", res)
		}
	}
	if n != 1 {
		t.Errorf("RunAll on a zero Runner gave %d results for 1 lead", n)
	}
}

// TestCloseBoundedByContext: Close waits for running leads only as long as
// its context lets it; the lead still ends, and a later Close is a no-op.
func TestCloseBoundedByContext(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	defer close(release)
	r := mustBind(t, mustParse(t, echoPlanLong), map[string]any{"base_url": srv.URL})
	done := make(chan *engine.Result, 1)
	go func() { done <- r.Run(context.Background(), map[string]any{"i": 1}) }()
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a lead running and its context done: %v", err)
	}
	if res := r.Run(context.Background(), map[string]any{"i": 2}); !errors.Is(res.Err, engine.ErrClosed) {
		t.Fatalf("a run after Close: %+v", res)
	}
	release <- struct{}{}
	if res := <-done; res.Outcome != engine.Success {
		t.Fatalf("the running lead: %s %q", res.Outcome, res.Reason)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
