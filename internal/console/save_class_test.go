package console

import (
	"testing"

	"github.com/plumbhq/plumb/engine"
)

// TestRecordedByKind: a try without an answer is recorded as a timeout or
// a connection error by its class, whatever its error text says.
func TestRecordedByKind(t *testing.T) {
	for _, c := range []struct {
		ex   engine.Exchange
		want string
	}{
		{engine.Exchange{Class: engine.ClassTimeout, Err: "GET http://x: the partner did not answer"}, "timeout"},
		{engine.Exchange{Class: engine.ClassConnection, Err: "dial tcp: lookup timeout.example: no such host"}, "connection"},
		{engine.Exchange{Class: engine.ClassTLS, Err: "tls: handshake deadline"}, "connection"},
	} {
		if got := recorded(&c.ex).Error; got != c.want {
			t.Errorf("%q (%s): recorded as %q, want %q", c.ex.Err, c.ex.Class, got, c.want)
		}
	}
}
