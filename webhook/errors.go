package webhook

import (
	"errors"
	"net/http"
)

// The reasons a delivery is refused. Test them with [errors.Is]; each
// [*Error] that [Verifier.Verify] returns wraps exactly one of them.
var (
	// ErrMissingSignature means the delivery is unsigned: a header the
	// scheme signs (signature, timestamp or id) is absent.
	ErrMissingSignature = errors.New("webhook: missing signature")
	// ErrBadSignature means the delivery is signed but malformed or signed
	// with none of the secrets, or its body was changed.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrStale means the signature is valid but its signed timestamp lies
	// outside the tolerance: a replay, or a sender with a skewed clock.
	ErrStale = errors.New("webhook: timestamp outside tolerance")
)

// Error is a refused delivery. Its message is the reason followed by a fixed
// detail naming the header at fault; it never contains a secret, a
// signature or any other value taken from the request.
type Error struct {
	// Reason is ErrMissingSignature, ErrBadSignature or ErrStale.
	Reason error
	// Detail says what was wrong, e.g. "no X-Hub-Signature-256 header".
	Detail string
}

// fail builds the error returned for a refused delivery.
func fail(reason error, detail string) *Error { return &Error{Reason: reason, Detail: detail} }

// Error returns the reason and the detail.
func (e *Error) Error() string { return e.Reason.Error() + ": " + e.Detail }

// Unwrap returns the reason, so errors.Is(err, ErrStale) and the like work.
func (e *Error) Unwrap() error { return e.Reason }

// HTTPStatus is the status to answer a refused delivery with: 401.
func (e *Error) HTTPStatus() int { return http.StatusUnauthorized }

// HTTPStatus maps the result of [Verifier.Verify] to a response status:
// 200 for nil, 401 for a refused delivery ([*Error]), 500 for anything else.
func HTTPStatus(err error) int {
	var e *Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &e):
		return e.HTTPStatus()
	default:
		return http.StatusInternalServerError
	}
}
