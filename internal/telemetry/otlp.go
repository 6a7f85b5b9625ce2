package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Span attributes the provider of NewProvider sets from a span's context.
const (
	AttrRequestID = "plumb.request_id"
	AttrLead      = "plumb.lead_id"
)

// NewProvider returns a TracerProvider that sends its spans to exp, in
// batches (or each as it ends, with sync: tests), and sets on every span the
// request and lead ids its context carries (AttrRequestID, AttrLead): the
// spans of engine/oteltrace and plumb serve's own are all tied to their
// request and lead. opts come after plumb's (a sampler, a resource).
func NewProvider(exp sdktrace.SpanExporter, sync bool, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	send := sdktrace.WithBatcher(exp)
	if sync {
		send = sdktrace.WithSyncer(exp)
	}
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(idsProcessor{}), send}, opts...)...)
}

// idsProcessor copies the ids of a span's parent context onto the span.
type idsProcessor struct{}

func (idsProcessor) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	i := idsOf(parent)
	if i == nil {
		return
	}
	if i.requestID != "" {
		s.SetAttributes(attribute.String(AttrRequestID, i.requestID))
	}
	if i.lead != "" {
		s.SetAttributes(attribute.String(AttrLead, i.lead))
	}
}

func (idsProcessor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (idsProcessor) Shutdown(context.Context) error   { return nil }
func (idsProcessor) ForceFlush(context.Context) error { return nil }

// Tracing is the trace exporter of a plumb process.
type Tracing struct {
	// Provider makes the spans; they are exported over OTLP/HTTP.
	Provider *sdktrace.TracerProvider
	// Endpoint is the URL the spans are sent to (a password in it masked).
	Endpoint string
}

// Shutdown sends the spans not sent yet and stops the exporter, within
// ctx. A nil Tracing has nothing to do.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.Provider.Shutdown(ctx)
}

// Lookup reads an environment variable (os.LookupEnv).
type Lookup func(string) (string, bool)

// FromEnv makes the trace exporter the standard OpenTelemetry variables
// ask for, or nil when they ask for none: spans are exported over OTLP/HTTP
// when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is
// set (or OTEL_TRACES_EXPORTER=otlp, to the default http://localhost:4318),
// unless OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true. It reads the
// endpoints, _HEADERS, _PROTOCOL (http/protobuf, the default, or
// http/json; grpc is refused), _TIMEOUT and _COMPRESSION (each with its
// TRACES_ form first), OTEL_TRACES_SAMPLER and _ARG, OTEL_SERVICE_NAME
// (default service) and OTEL_RESOURCE_ATTRIBUTES through env; TLS files
// (_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY) are read by the
// exporter from the process environment. A value it cannot use is an
// error naming the variable, never quoting a header's value. Export
// failures are logged to log (once until exporting works again), not
// retried forever: spans are dropped rather than held.
func FromEnv(env Lookup, service string, log *slog.Logger) (*Tracing, error) {
	get := func(k string) string {
		v, _ := env(k)
		return strings.TrimSpace(v)
	}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	endpoint, err := endpointFromEnv(get)
	if err != nil || endpoint == "" {
		return nil, err
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	more, err := exporterOptions(get)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(context.Background(), append(opts, more...)...)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	sampler, err := samplerFromEnv(get)
	if err != nil {
		return nil, err
	}
	res, err := resourceFromEnv(get, service)
	if err != nil {
		return nil, err
	}
	shown := endpoint
	if u, err := url.Parse(endpoint); err == nil {
		shown = u.Redacted()
	}
	tp := NewProvider(&loggedExporter{SpanExporter: exp, log: log, endpoint: shown}, false,
		sdktrace.WithSampler(sampler), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Endpoint: shown}, nil
}

// endpointFromEnv is the URL spans go to, "" for no export.
func endpointFromEnv(get func(string) string) (string, error) {
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return "", nil
	case "", "otlp":
		if v := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
			// used as it is (the exporter sends to / when it has no path)
			u, err := httpURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)
			if err != nil {
				return "", err
			}
			return u.String(), nil
		}
		base := get("OTEL_EXPORTER_OTLP_ENDPOINT")
		if base == "" {
			if exp == "" {
				return "", nil
			}
			base = "http://localhost:4318"
		}
		u, err := httpURL("OTEL_EXPORTER_OTLP_ENDPOINT", base)
		if err != nil {
			return "", err
		}
		u.Path = path.Join("/", u.Path, "v1/traces")
		return u.String(), nil
	default:
		return "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: plumb exports traces with otlp (or none)", exp)
	}
}

// httpURL parses an endpoint variable's value.
func httpURL(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: want an http:// or https:// URL with a host and no query (such as http://collector:4318)", name)
	}
	return u, nil
}

// exporterOptions reads protocol, headers, timeout and compression.
func exporterOptions(get func(string) string) ([]otlptracehttp.Option, error) {
	var opts []otlptracehttp.Option
	name, v := pick(get, "PROTOCOL")
	switch v {
	case "", "http/protobuf":
	case "http/json":
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	case "grpc":
		return nil, fmt.Errorf("%s=grpc: plumb sends OTLP over HTTP; set http/protobuf (the collector's port 4318)", name)
	default:
		return nil, fmt.Errorf("%s=%q: want http/protobuf or http/json", name, v)
	}
	if name, v := pick(get, "HEADERS"); v != "" {
		h, err := parsePairs(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (want key=value,key2=value2, values percent-encoded)", name, err)
		}
		opts = append(opts, otlptracehttp.WithHeaders(h))
	}
	if name, v := pick(get, "TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of milliseconds", name, v)
		}
		opts = append(opts, otlptracehttp.WithTimeout(time.Duration(ms)*time.Millisecond))
	}
	switch name, v := pick(get, "COMPRESSION"); v {
	case "", "none":
	case "gzip":
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	default:
		return nil, fmt.Errorf("%s=%q: want gzip or none", name, v)
	}
	return opts, nil
}

// pick reads OTEL_EXPORTER_OTLP_TRACES_X, else OTEL_EXPORTER_OTLP_X, and
// says which it read.
func pick(get func(string) string, x string) (string, string) {
	name := "OTEL_EXPORTER_OTLP_TRACES_" + x
	if v := get(name); v != "" {
		return name, v
	}
	name = "OTEL_EXPORTER_OTLP_" + x
	return name, get(name)
}

// parsePairs reads key=value,key2=value2 (the W3C baggage form of the
// OTEL_* variables), values percent-decoded. Errors name the pair by
// position only: the values are secrets (API keys).
func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n\"") {
			return nil, fmt.Errorf("pair %d is not key=value", i+1)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil || strings.ContainsAny(val, "\r\n") {
			return nil, fmt.Errorf("the value of %s is not percent-encoded text", k)
		}
		out[k] = val
	}
	return out, nil
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER (default parentbased_always_on:
// a request whose traceparent says "not sampled" is not exported).
func samplerFromEnv(get func(string) string) (sdktrace.Sampler, error) {
	name, arg := strings.ToLower(get("OTEL_TRACES_SAMPLER")), get("OTEL_TRACES_SAMPLER_ARG")
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return sdktrace.TraceIDRatioBased(f), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		s, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(s), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// resourceFromEnv describes the process: OTEL_RESOURCE_ATTRIBUTES, then
// service.name from OTEL_SERVICE_NAME (else those attributes, else
// service), and the SDK's own attributes.
func resourceFromEnv(get func(string) string, service string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{}
	if v := get("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		pairs, err := parsePairs(v)
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		for k, v := range pairs {
			if k == "service.name" {
				service = v
				continue
			}
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	if v := get("OTEL_SERVICE_NAME"); v != "" {
		service = v
	}
	attrs = append(attrs, attribute.String("service.name", service))
	res, err := resource.New(context.Background(), resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}

// loggedExporter logs failed exports, once per run of failures, instead of
// leaving them to OpenTelemetry's global error handler (which prints
// plain lines in the middle of JSON logs). The spans of a failed export
// are dropped.
type loggedExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string
	failing  atomic.Bool
}

func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	switch {
	case err != nil && !e.failing.Swap(true):
		e.log.Warn("exporting traces failed; spans are dropped until the collector takes them again",
			"endpoint", e.endpoint, "spans", len(spans), "err", err)
	case err == nil && e.failing.Swap(false):
		e.log.Info("exporting traces again", "endpoint", e.endpoint)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
