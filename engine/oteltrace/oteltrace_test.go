package oteltrace

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/codes"
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
	t.Cleanup(func() { r.Close(context.Background()) })
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

// attr is the value of a span's attribute k, as a string ("" if absent).
func attr(s sdktrace.ReadOnlySpan, k string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == k {
			return a.Value.String()
		}
	}
	return ""
}

// TestFailedTrySpans: a partner that does not answer gives error spans:
// the try's with status code 0 and the (masked) error, the step's and the
// lead's with outcome and class; the secret in the URL never shows.
func TestFailedTrySpans(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there now: connection refused
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	src := "version: 1\nname: ops\nsettings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: a\n    request: { url: \"{{settings.base_url}}/a?k={{settings.key}}\" }\n    max_attempts: 1\n"
	p, err := engine.Parse("ops.yaml", []byte(src), engine.WithEvents(New(tp, false)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": base, "key": "s3cret-k3y"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Error {
		t.Fatalf("%s %q", res.Outcome, res.Reason)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.String(), "s3cret-k3y") {
				t.Fatalf("span %s shows the secret in %s", s.Name(), a.Key)
			}
		}
		if strings.Contains(s.Status().Description, "s3cret-k3y") {
			t.Fatalf("span %s shows the secret in its status", s.Name())
		}
	}
	try, step, lead := byName["plumb.try"], byName["plumb.step"], byName["plumb.lead"]
	if try == nil || step == nil || lead == nil {
		t.Fatalf("spans %v", byName)
	}
	if attr(try, "plumb.outcome") != "error" || attr(try, "http.response.status_code") != "0" || try.Status().Code != codes.Error ||
		try.Status().Description == "" || attr(try, "plumb.attempt") != "1" || attr(try, "http.request.method") != "GET" ||
		!strings.Contains(attr(try, "url.full"), "k=****") {
		t.Fatalf("try span %v %v", try.Attributes(), try.Status())
	}
	if attr(step, "plumb.step") != "a" || attr(step, "plumb.outcome") != "error" || attr(step, "plumb.class") != "connection" || step.Status().Code != codes.Error {
		t.Fatalf("step span %v %v", step.Attributes(), step.Status())
	}
	if attr(lead, "plumb.integration") != "ops" || attr(lead, "plumb.outcome") != "error" || attr(lead, "plumb.class") != "connection" {
		t.Fatalf("lead span %v", lead.Attributes())
	}
}

// TestNoTraceparentWithoutPropagate: without propagate the partner gets
// no traceparent, and the Events inject nothing.
func TestNoTraceparentWithoutPropagate(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Traceparent"))
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ev := New(tp, false)
	if _, ok := ev.(engine.HeaderInjector); ok {
		t.Fatal("New(tp, false) injects headers")
	}
	src := "version: 1\nname: ops\nsettings: { base_url: {} }\nsteps:\n  - name: a\n    request: { url: \"{{settings.base_url}}/a\" }\n"
	r := bindSrc(t, src, srv.URL, engine.WithEvents(ev))
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Success {
		t.Fatal(res.Reason)
	}
	if len(got) != 1 || got[0] != "" {
		t.Fatalf("traceparent %q", got)
	}
}
