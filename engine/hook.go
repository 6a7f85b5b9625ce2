package engine

import (
	"path"

	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/webhook"
)

// HookPath is the path plumb serve receives the integration's webhook on
// (its webhook: path:, or /v1/hooks/NAME); "" when it has no webhook:
// section.
func (p *Plan) HookPath() string { return p.in.HookPath() }

// Hook returns the receiver of the integration's webhook: section, its
// signing secrets read from the runner's settings; nil (and no error) when
// the integration has no webhook: section. The file is not read again: the
// section was decoded and checked with the rest of the plan.
func (r *Runner) Hook() (*webhook.Hook, error) {
	if r.plan.in.Webhook == nil {
		return nil, nil
	}
	cfg, err := r.plan.in.HookConfig(r.Value)
	if err != nil {
		return nil, err
	}
	return webhook.NewHook(cfg, nil)
}

// checkHookPath refuses a webhook path that is not canonical: plumb serve
// routes requests by their canonical path (it refuses the others), so a
// path with . or .. segments would never be reached as written, and once
// cleaned it may be another route's (/v1/hooks/../integrations/x/run).
func (c *compiler) checkHookPath() {
	in := c.in
	if in.Webhook == nil {
		return
	}
	p := in.HookPath()
	clean := path.Clean("/" + p)
	if clean == p {
		return
	}
	if in.Webhook.Path.IsSet() {
		hint := "write " + clean
		if steps.ReservedPath(clean) {
			hint = "that is a route of plumb serve; the default /v1/hooks/NAME is always free"
		}
		c.errs.Add(in.Webhook.Path.Pos, hint, "webhook: path %q is not canonical: it means %s", p, clean)
		return
	}
	c.errs.Add(in.Name.Pos, "give the webhook a path: of its own, or a name of letters, digits, _ and -",
		"webhook: the default path %s is not canonical: the name %q has / or . segments", p, in.Name.Value)
}
