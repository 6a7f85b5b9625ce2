package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/engine"
)

// usageError returns how command cmd reports bad usage: the problem
// prefixed with the command's name, then where to read its usage; it
// returns ExitUsage.
func usageError(s *stdio, cmd string) func(format string, args ...any) int {
	return func(format string, args ...any) int {
		s.errorf(cmd+": "+format, args...)
		fmt.Fprintf(s.stderr, "Run 'plumb %s -h' for usage.\n", cmd)
		return ExitUsage
	}
}

// integrationArg returns the one integration file args name (the
// positional arguments of run, try, bench or auth SUB), else the problem
// with them.
func integrationArg(args []string) (file, problem string) {
	switch {
	case len(args) == 0:
		return "", "no integration file given"
	case len(args) > 1:
		return "", fmt.Sprintf("one integration file at a time, got %d: %s", len(args), strings.Join(args, " "))
	}
	return args[0], ""
}

// planSetup gets an integration ready to run for command cmd: load opens
// the stores and loads the plan, resolve resolves its settings. Both
// report their problems on stderr and return false; close releases what
// they opened, whether or not they succeeded.
type planSetup struct {
	s    *stdio
	cmd  string
	file string

	plan     *engine.Plan
	settings *engine.Runner
	stores   *stores
	stop     func()
	// tokens, when set, replaces the stores' token store.
	tokens auth.TokenStore
}

// load opens the stores of st (none when st is nil) and loads the
// integration with opts and the stores' options.
func (p *planSetup) load(st *storeFlags, opts ...engine.Option) bool {
	p.stores = &stores{}
	if st != nil {
		var err error
		p.stores, err = st.open(p.s)
		if err != nil {
			p.s.errorf("%s: %v", p.cmd, err)
			return false
		}
	}
	plan, err := engine.Load(p.file, opts...)
	if err != nil {
		fmt.Fprintln(p.s.stderr, err.Error())
		return false
	}
	p.plan = plan
	return true
}

// resolve resolves the plan's settings from the settings flags f (which
// may start a sandbox) and tells the stores which tokens they keep.
func (p *planSetup) resolve(f *settingsFlags) bool {
	cfg := engine.Config{LookupEnv: p.s.env, LoginHint: "run plumb auth login " + p.file}
	if p.stores.cache != nil {
		cfg.Store = p.stores.cache
	}
	if p.stores.tokens != nil {
		cfg.Tokens = p.stores.tokens
	}
	if p.tokens != nil {
		cfg.Tokens = p.tokens
	}
	settings, stop, ok := f.resolve(p.s, p.cmd, p.plan, p.file, cfg)
	p.stop = stop
	if !ok {
		return false
	}
	p.settings = settings
	p.stores.use(settings)
	return true
}

func (p *planSetup) close() {
	if p.settings != nil {
		p.settings.Close(context.Background())
	}
	if p.stop != nil {
		p.stop()
	}
	if p.stores != nil {
		p.stores.close()
	}
}
