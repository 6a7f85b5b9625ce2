package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/serve"
	"github.com/plumbhq/plumb/steps"
)

// settingsFlags are the flags that give setting values, shared by run and
// try.
type settingsFlags struct {
	file string
	// given is set when --settings was given (even empty: no file).
	given   bool
	set     setFlags
	sandbox bool
}

func (f *settingsFlags) register(fs *flag.FlagSet) {
	fs.Func("settings", "read setting values from a YAML or JSON `FILE` (default: the settings file beside the integration, as plumb serve reads it; '' for none)", func(v string) error {
		f.file, f.given = v, true
		return nil
	})
	fs.Var(&f.set, "set", "set a setting: `key=value` (repeatable; overrides --settings)")
	fs.BoolVar(&f.sandbox, "sandbox", false, "serve the examples' fake partner API on 127.0.0.1 and point the base_url setting at it")
}

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (f *setFlags) String() string { return strings.Join(*f, ",") }

func (f *setFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	*f = append(*f, v)
	return nil
}

// resolveSettings resolves plan's settings from the flags and the
// environment, starting the sandbox first when --sandbox asks for it. stop
// stops the sandbox (it is never nil, even on error). It reports problems
// on stderr, prefixed with cmd, and returns false after any.
func (f *settingsFlags) resolve(s *stdio, cmd string, plan *engine.Plan, file string, cfg engine.Config) (settings *engine.Runner, stop func(), ok bool) {
	stop = func() {}
	given, pos, err := givenSettings(plan, f.settingsFile(s, cmd, file), f.set)
	if err != nil {
		var list steps.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(s.stderr, err.Error())
		} else {
			s.errorf("%s: %v", cmd, err)
		}
		return settings, stop, false
	}
	if f.sandbox {
		if _, ok := plan.Setting("base_url"); !ok {
			s.errorf("%s: --sandbox: %s declares no base_url setting to point at the sandbox", cmd, file)
			return settings, stop, false
		}
		url, stopSandbox, err := startSandbox()
		if err != nil {
			s.errorf("%s: %v", cmd, err)
			return settings, stop, false
		}
		stop = stopSandbox
		given["base_url"] = url
		delete(pos, "base_url")
	}
	cfg.Values, cfg.ValuePos = given, pos
	settings, err = plan.Bind(cfg)
	if err != nil {
		var list steps.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(s.stderr, cliHints(err.Error()))
		} else {
			s.errorf("%s: %v", cmd, err)
		}
		return settings, stop, false
	}
	return settings, stop, true
}

// settingsFile is the settings file to read: --settings when given, else
// the one beside the integration file when it exists, as plumb serve
// reads it (NAME/settings.yaml beside NAME/integration.yaml,
// X.settings.yaml beside X.yaml), said in one line on stderr.
func (f *settingsFlags) settingsFile(s *stdio, cmd, integration string) string {
	if f.given {
		return f.file
	}
	beside := serve.SettingsFile(integration)
	if st, err := os.Stat(beside); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	s.errorf("%s: settings from %s, beside the integration (--settings FILE reads another, --settings '' none)", cmd, beside)
	return beside
}

// givenSettings merges the --settings file (read by engine.ReadSettings,
// whose errors name the file, line and setting and never quote a value)
// and the --set flags, and says where each value from the file was
// written. A --set value is taken verbatim for string, number and bool
// settings (the engine converts it to the declared type) and parsed as
// YAML for list and object settings.
func givenSettings(plan *engine.Plan, file string, sets []string) (map[string]any, map[string]steps.Pos, error) {
	given, pos := map[string]any{}, map[string]steps.Pos{}
	if file != "" {
		sf, err := engine.ReadSettings(file)
		if err != nil {
			return nil, nil, err
		}
		given, pos = sf.Values, sf.Pos
	}
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		given[k] = v
		delete(pos, k)
		if d, ok := plan.Setting(k); ok && (d.Type == "list" || d.Type == "object") {
			var x any
			if err := yaml.Unmarshal([]byte(v), &x); err != nil {
				return nil, nil, fmt.Errorf("--set %s: the value is not valid YAML", k)
			}
			given[k] = x
		}
	}
	return given, pos, nil
}

// cliHints adds the CLI's ways of giving a setting to the library's hints.
func cliHints(msg string) string {
	msg = strings.ReplaceAll(msg, "it is given empty in Config.Values", "it is given empty with --set")
	return strings.ReplaceAll(msg, "(give it in Config.Values", "(pass it with --set NAME=… or a --settings file")
}
