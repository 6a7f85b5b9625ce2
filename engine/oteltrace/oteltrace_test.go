package oteltrace

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/plumbhq/plumb/engine"
)

func bindSrc(t *testing.T, src, base string, opts ...engine.Option) *engine.Runner {
	t.Helper()
	p, err := engine.Parse("ops.yaml", []byte(src), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestSpansHaveTheRightShape: one lead span, a step span under it, a try
// span under that; with propagation the partner receives the traceparent
// of the try.
func TestSpansHaveTheRightShape(t *testing.T) {
	var parents sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parents.Store(r.Header.Get("Traceparent"), true)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: a\n    request: { url: \"{{settings.base_url}}/a\" }\n  - name: b\n    request: { url: \"{{settings.base_url}}/b\" }\n"
	r := bindSrc(t, src, srv.URL, engine.WithEvents(New(tp, true)))
	if res := r.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatal(res.Reason)
	}
	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	if len(byName["plumb.lead"]) != 1 || len(byName["plumb.step"]) != 2 || len(byName["plumb.try"]) != 2 {
		t.Fatalf("spans %v", byName)
	}
	lead := byName["plumb.lead"][0]
	steps := map[[8]byte]bool{}
	for _, s := range byName["plumb.step"] {
		if s.Parent().SpanID() != lead.SpanContext().SpanID() {
			t.Fatalf("step span not under the lead")
		}
		steps[s.SpanContext().SpanID()] = true
	}
	for _, s := range byName["plumb.try"] {
		if !steps[s.Parent().SpanID()] {
			t.Fatalf("try span not under a step")
		}
		tp := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
		if _, ok := parents.Load(tp); !ok {
			t.Fatalf("the partner did not receive traceparent %s", tp)
		}
	}
}
