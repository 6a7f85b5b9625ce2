// Package observe hands every HTTP try of a plan's runners, whole, to a
// function: the masked request and answer, connection timings and the rule
// that matched (an engine.Exchange). It is how `plumb try`, `plumb run -v`,
// the console and `plumb test` show exchanges, and how tests look at what
// was sent.
//
// It is public because embedders debug and record with it too, and it is
// its own package because it is one adapter of engine.Events among others
// (engine/prommetrics, engine/oteltrace, engine/eventlog): the engine builds
// an Exchange per try only when an Events asks for them, as this one does.
//
//	plan, err := engine.Load("integration.yaml", engine.WithEvents(observe.New(func(ctx context.Context, ex *engine.Exchange) {
//		log.Printf("%s %s -> %d", ex.Method, ex.URL, ex.Status)
//	})))
package observe

import (
	"context"

	"github.com/plumbhq/plumb/engine"
)

// New returns Events that call fn after every HTTP try of every step (and
// every OAuth2 token fetch, as step "auth:token"), from the goroutine
// running the lead. Secret setting values are masked everywhere in the
// Exchange. It costs a request trace and copies of headers and bodies per
// try, so give it only when somebody looks.
func New(fn func(ctx context.Context, ex *engine.Exchange)) engine.Events {
	return observer{fn: fn}
}

type observer struct {
	engine.NopEvents
	fn func(ctx context.Context, ex *engine.Exchange)
}

// Exchange implements engine.ExchangeObserver.
func (o observer) Exchange(ctx context.Context, ex *engine.Exchange) { o.fn(ctx, ex) }
