// Package webhook verifies inbound webhook deliveries and derives their
// dedupe keys.
//
// It is public because verifying a partner's delivery is an embedder's
// need on its own ([New], [Verifier.Verify]) and with an integration's
// webhook: section (engine.Runner.Hook gives its [Hook]). How plumb serve
// stores an accepted delivery in its queue is internal (internal/hookjob).
//
// A [Verifier] is built once from a [Config] (usually the verify block of a
// hook in the operator's trusted configuration) and then checks each
// delivery's headers against its raw body:
//
//	v, err := webhook.New(webhook.Config{Preset: webhook.PresetGitHub, Secrets: []string{secret}}, nil)
//	...
//	ev, err := v.Verify(r.Header, body) // body: the exact bytes read from r.Body
//	if err != nil {
//		http.Error(w, "invalid signature", webhook.HTTPStatus(err)) // 401
//		return
//	}
//	msgID := webhook.DedupeKey(hookName, ev.Key(fallback...))
//
// Presets encode each provider's documented scheme — header names, signed
// content, signature encoding, and whether a signed timestamp exists:
//
//   - [PresetStandard] — Standard Webhooks (webhook-id, webhook-timestamp,
//     webhook-signature: space-separated "v1,<base64>" entries, secrets
//     "whsec_<base64>"), and [PresetSvix], the same scheme under svix-* headers.
//   - [PresetGitHub] — X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(body)>.
//   - [PresetStripe] — Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…] over
//     "<t>.<body>".
//   - [PresetActuallyCare] — X-Webhook-Signature: <hex of HMAC-SHA256(body)>
//     (seed 000, "Handling Webhooks").
//   - [PresetHMAC] — a generic HMAC whose algorithm, encoding, header, prefix
//     and signed content ([Config.Signed], e.g. "{timestamp}.{body}") are
//     configured.
//
// Every check runs over the raw body bytes, compares in constant time
// ([crypto/hmac.Equal]), accepts any of several active secrets (rotation),
// and — where the scheme signs a timestamp — rejects deliveries outside a
// tolerance window (default [DefaultTolerance]) in either direction.
// Verification failures are [*Error] values that wrap one of
// [ErrMissingSignature], [ErrBadSignature] or [ErrStale], map to HTTP 401,
// and never contain a secret or a raw header value.
//
// Dedupe rests on signed material only. [Event.Key] is the event id where
// the scheme signs it (webhook-id, svix-id, the Stripe event's "id", an
// hmac id with {id} in [Config.Signed]), otherwise the fallback parts the
// caller takes from the verified body, otherwise [Event.Digest], the
// SHA-256 of the signed content. X-GitHub-Delivery and an hmac id header
// outside the signed content are read into [Event.ID] but never key
// dedupe: a captured delivery resent under a new id (or none) would
// otherwise run again. Keep a key for at least twice the tolerance plus a
// margin, as [Hook.Window] does: a copy verifies until its signed timestamp
// leaves the tolerance. A scheme without a signed timestamp (github,
// actuallycare, hmac without {timestamp}) has no such bound — a captured
// delivery verifies forever — so how long its keys are kept
// ([DefaultWindowNoTimestamp] unless configured) is how long its replays
// are refused.
//
// Asymmetric Standard Webhooks signatures ("v1a", whpk_/whsk_ keys) are not
// supported; such entries are ignored like any other unknown version.
package webhook
