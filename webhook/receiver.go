package webhook

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/plumbhq/plumb/internal/leadjson"
	"github.com/plumbhq/plumb/template"
)

// Receiver defaults.
const (
	// DefaultMaxBytes bounds a delivery's body when HookConfig.MaxBytes is 0.
	DefaultMaxBytes = 512 << 10
	// DefaultWindow is how long a dedupe key is remembered when
	// HookConfig.Window is 0 and the scheme signs a timestamp.
	DefaultWindow = 24 * time.Hour
	// DefaultWindowNoTimestamp is how long a dedupe key is remembered when
	// HookConfig.Window is 0 and the scheme signs no timestamp (github,
	// actuallycare, hmac without {timestamp}). Such a delivery verifies
	// forever, so the window is the only bound on replays: a copy resent
	// within it is a duplicate, a copy resent later runs again. A week
	// covers GitHub's redelivery of the last three days with room to spare.
	DefaultWindowNoTimestamp = 7 * 24 * time.Hour
	// WindowMargin is added to twice the tolerance to give the shortest
	// window a scheme with a signed timestamp may have: a copy is refused
	// as stale before its key expires, across expiry rounding and the clock
	// differences of a cluster.
	WindowMargin = time.Minute
	// JobPrefix starts the queue job id of every accepted delivery, so the
	// service's workers tell events from leads. Queue-generated ids never
	// contain "_".
	JobPrefix = "wh_"
)

// Reasons a delivery is refused before or after its signature is checked,
// besides the verification errors (ErrMissingSignature, ErrBadSignature,
// ErrStale: 401). Test them with errors.Is; [Status] maps them to HTTP.
var (
	// ErrTooLarge: the body exceeds the hook's max_bytes (413).
	ErrTooLarge = errors.New("webhook: body too large")
	// ErrContentType: the body is not declared as JSON, or is sent with a
	// Content-Encoding (415).
	ErrContentType = errors.New("webhook: unsupported content type")
	// ErrInvalidBody: the body is signed correctly but is not one JSON
	// object (400).
	ErrInvalidBody = errors.New("webhook: the body is not a JSON object")
)

// Status is the HTTP status a receiver answers a refused delivery with:
// 401 for verification errors, 413, 415 and 400 for the receiver's own,
// 500 for anything else (nil: 200).
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrContentType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrInvalidBody):
		return http.StatusBadRequest
	}
	return HTTPStatus(err)
}

// Code is the stable error code of a refused delivery, for answers and
// metrics: missing_signature, bad_signature, stale, body_too_large,
// unsupported_media_type, invalid_json or internal.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrMissingSignature):
		return "missing_signature"
	case errors.Is(err, ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrTooLarge):
		return "body_too_large"
	case errors.Is(err, ErrContentType):
		return "unsupported_media_type"
	case errors.Is(err, ErrInvalidBody):
		return "invalid_json"
	}
	return "internal"
}

// HookConfig is one integration's receiver, from its webhook: section.
type HookConfig struct {
	// Integration names the hook; it scopes dedupe keys.
	Integration string
	// Verify is the signature scheme with the secrets resolved.
	Verify Config
	// DedupeKey is a template over lead (the event, which is signed) and
	// settings. Empty, or when it renders nothing: [Event.Key] — the signed
	// event id (standard-webhooks, svix, stripe, hmac with {id}), for
	// actuallycare the body's event and timestamp, otherwise the digest of
	// the signed content. An unsigned id (X-GitHub-Delivery, an hmac
	// id_header outside signed) never keys dedupe: a replay could change it.
	DedupeKey string
	// Window is how long keys are remembered (0: DefaultWindow, or
	// DefaultWindowNoTimestamp for a scheme without a signed timestamp). It
	// is raised to twice the tolerance plus WindowMargin when shorter, and
	// rounded up to a whole second.
	Window time.Duration
	// MaxBytes bounds a body (0: DefaultMaxBytes).
	MaxBytes int64
	// Meta names a lead field that receives {id, type, preset, received}.
	Meta string
	// Settings are the integration's setting values, for the key template.
	Settings map[string]any
}

// Hook receives deliveries for one integration. It is immutable and safe
// for concurrent use.
type Hook struct {
	cfg HookConfig
	v   *Verifier
	key *template.Template
	now func() time.Time
}

// NewHook checks cfg and builds its receiver. now is the clock for
// timestamp tolerance (nil: time.Now). Errors never contain a secret.
func NewHook(cfg HookConfig, now func() time.Time) (*Hook, error) {
	if now == nil {
		now = time.Now
	}
	v, err := New(cfg.Verify, now)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	cfg.Window = window(cfg.Window, v.Tolerance())
	h := &Hook{cfg: cfg, v: v, now: now}
	if cfg.DedupeKey != "" {
		t, err := template.New(template.WithClock(now)).Compile("webhook.dedupe.key", cfg.DedupeKey, template.Plain)
		if err != nil {
			return nil, fmt.Errorf("webhook: dedupe key: %w", err)
		}
		h.key = t
	}
	return h, nil
}

// window is the dedupe window in force for a configured one (0: the
// default) and the scheme's tolerance (0: no signed timestamp). A copy of a
// delivery with a signed timestamp verifies for at most twice the
// tolerance after the first copy was accepted; its key must outlive that.
func window(w, tolerance time.Duration) time.Duration {
	if w <= 0 {
		w = DefaultWindow
		if tolerance == 0 {
			w = DefaultWindowNoTimestamp
		}
	}
	if tolerance > 0 {
		w = max(w, 2*tolerance+WindowMargin)
	}
	if r := w % time.Second; r != 0 {
		w += time.Second - r
	}
	return w
}

// Verifier is the hook's verifier (for signing test deliveries).
func (h *Hook) Verifier() *Verifier { return h.v }

// Window is how long the hook's dedupe keys must be remembered: the
// configured window, or its default, raised to cover the tolerance (see
// [HookConfig.Window]); always a whole number of seconds.
func (h *Hook) Window() time.Duration { return h.cfg.Window }

// MaxBytes is the largest body the hook accepts.
func (h *Hook) MaxBytes() int64 { return h.cfg.MaxBytes }

// Delivery is a verified delivery, ready to be stored.
type Delivery struct {
	// Event is what the signature scheme says about the delivery.
	Event Event
	// Body is the raw body, as signed.
	Body []byte
	// Lead is the body decoded (numbers as json.Number).
	Lead map[string]any
	// Key is the raw dedupe key, made only of signed material (see
	// [HookConfig.DedupeKey]); never empty.
	Key string
	// JobID is the queue job id: JobPrefix and [DedupeKey] of the key, so
	// every copy of one event — a retry, or a replay under another
	// unsigned id — gets the same id.
	JobID string
	// Received is when the delivery was accepted.
	Received time.Time
}

// Receive checks one delivery: the content type (JSON), the size (at most
// MaxBytes, read from body without reading more), the signature over the
// raw bytes, then that the body is one JSON object; and derives its dedupe
// key. Errors are verification errors or ErrContentType, ErrTooLarge,
// ErrInvalidBody; [Status] gives their HTTP status. Nothing is stored.
func (h *Hook) Receive(header http.Header, body io.Reader) (*Delivery, error) {
	if !jsonType(header.Get("Content-Type")) {
		return nil, fmt.Errorf("%w: Content-Type must be application/json", ErrContentType)
	}
	for _, ce := range header.Values("Content-Encoding") {
		if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
			return nil, fmt.Errorf("%w: a Content-Encoding (compressed body) is not accepted: send it uncompressed", ErrContentType)
		}
	}
	raw, err := io.ReadAll(io.LimitReader(body, h.cfg.MaxBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, h.cfg.MaxBytes)
		}
		return nil, fmt.Errorf("webhook: reading the body: %w", err)
	}
	if int64(len(raw)) > h.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, h.cfg.MaxBytes)
	}
	ev, err := h.v.Verify(header, raw)
	if err != nil {
		return nil, err
	}
	lead, err := leadjson.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBody, err)
	}
	d := &Delivery{Event: ev, Body: raw, Lead: lead, Received: h.now().UTC()}
	d.Key = h.dedupeKey(ev, lead)
	d.JobID = JobPrefix + DedupeKey(h.cfg.Integration, d.Key)
	return d, nil
}

// dedupeKey derives the raw key from signed material only: the template's
// rendering (over the signed body), else [Event.Key] — the signed event
// id, for seed 000 the body's event and timestamp (both), else the digest
// of the signed content. A template that renders nothing falls back to the same
// (a genuine event is never refused for its key, and a replay of it is
// still recognised).
func (h *Hook) dedupeKey(ev Event, lead map[string]any) string {
	if h.key != nil {
		s, err := h.key.Render(map[string]any{"lead": lead, "settings": h.cfg.Settings})
		if err == nil && s != "" {
			return "tpl:" + s
		}
	}
	if h.v.preset != PresetActuallyCare {
		return ev.Key()
	}
	str := func(k string) string {
		if v, ok := lead[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	evName, ts := str("event"), str("timestamp")
	if evName == "" || ts == "" {
		return ev.Key() // half a pair would fold distinct events into one
	}
	return ev.Key(evName, ts)
}

// jsonType reports whether a Content-Type names JSON: application/json or
// any type/subtype+json.
func jsonType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Lead is the lead the steps run for a delivery: its body as a JSON object
// (numbers as json.Number; decoded again when d.Lead is nil, as for a
// delivery read back from storage), plus, when the hook has a meta field,
// {id, type, preset, received} under it. h may be nil (the integration
// lost its webhook section since the delivery was stored): no meta field.
func (h *Hook) Lead(d *Delivery) (map[string]any, error) {
	lead := d.Lead
	if lead == nil {
		var err error
		if lead, err = leadjson.Decode(d.Body); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidBody, err)
		}
	}
	if h == nil || h.cfg.Meta == "" {
		return lead, nil
	}
	out := make(map[string]any, len(lead)+1)
	for k, v := range lead {
		out[k] = v
	}
	out[h.cfg.Meta] = map[string]any{"id": d.Event.ID, "type": d.Event.Type,
		"preset": d.Event.Preset, "received": d.Received.Format(time.RFC3339Nano)}
	return out, nil
}
