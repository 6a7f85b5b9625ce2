package engine

import "context"

// The older tests read plan.Settings(given, env) then plan.Run(ctx, lead,
// s); these helpers give that shape over Bind and Runner.Run, and check
// that s belongs to p, as the real API makes impossible to get wrong.

// Settings is a bound runner, in the tests' older vocabulary.
type Settings = *Runner

func (p *Plan) Settings(given map[string]any, env func(string) (string, bool)) (*Runner, error) {
	return p.Bind(Config{Values: given, LookupEnv: env})
}

func (p *Plan) Run(ctx context.Context, lead map[string]any, r *Runner) *Result {
	if r.plan != p {
		panic("test bug: runner of another plan")
	}
	return r.Run(ctx, lead)
}

func (p *Plan) DryRun(lead map[string]any, r *Runner) []Rendered { return r.DryRun(lead) }

func (p *Plan) RunStep(ctx context.Context, name string, lead map[string]any, r *Runner, prior map[string]map[string]any) (*Result, error) {
	return r.RunStep(ctx, name, lead, prior)
}

func (r *Runner) Expect(n int) { r.expect(n) }
func (r *Runner) Flush()       { r.flush() }
