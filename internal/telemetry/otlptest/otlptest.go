// Package otlptest is an OTLP/HTTP trace receiver for tests: a real HTTP
// server that decodes each export (protobuf, gzip or not; JSON kept raw),
// standing in for a collector.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// Export is one export request the receiver took.
type Export struct {
	Path   string
	Header http.Header
	// Spans decoded from a protobuf body (none from a JSON one).
	Spans []Span
	// JSON is the body of a JSON export.
	JSON []byte
}

// Span is an exported span, flattened.
type Span struct {
	Name, TraceID, SpanID, ParentSpanID string
	Attrs                               map[string]string
	// Resource is the attributes of the span's resource.
	Resource map[string]string
}

// Receiver is the stand-in collector.
type Receiver struct {
	*httptest.Server
	// Refuse makes it answer 400 (an export the exporter does not retry).
	Refuse atomic.Bool

	mu      sync.Mutex
	exports []Export
	changed chan struct{}
}

// New starts a receiver, closed at the end of the test.
func New(t testing.TB) *Receiver {
	r := &Receiver{changed: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Refuse.Load() {
		http.Error(w, "refused", http.StatusBadRequest)
		return
	}
	ex := Export{Path: req.URL.Path, Header: req.Header.Clone()}
	if req.Header.Get("Content-Type") == "application/json" {
		ex.JSON = b
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	} else {
		var msg collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ex.Spans = flatten(&msg)
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}
	r.mu.Lock()
	r.exports = append(r.exports, ex)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func flatten(msg *collectorpb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out = append(out, Span{Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()),
					SpanID: hex.EncodeToString(s.GetSpanId()), ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attrs: attrs(s.GetAttributes()), Resource: res})
			}
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			out[kv.GetKey()] = strconv.FormatBool(v.BoolValue)
		default:
			out[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return out
}

// Exports are the exports taken so far.
func (r *Receiver) Exports() []Export {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Export(nil), r.exports...)
}

// Spans are the spans of every export so far.
func (r *Receiver) Spans() []Span {
	var out []Span
	for _, ex := range r.Exports() {
		out = append(out, ex.Spans...)
	}
	return out
}

// Wait waits until ok accepts the exports (the deadline only turns a
// hang into a failure).
func (r *Receiver) Wait(t testing.TB, what string, ok func([]Export) bool) []Export {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if ex := r.Exports(); ok(ex) {
			return ex
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("the OTLP receiver never got %s: %d exports", what, len(r.Exports()))
		}
	}
}
