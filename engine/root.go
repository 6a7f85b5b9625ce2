package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/plumbhq/plumb/steps"
)

// WithRoot confines the files a plan reads to the directory dir, for an
// integration file its reader does not trust as it trusts its operator
// (plumb serve's test console loads every file this way): the fragments
// the file includes (see steps.WithRoot: relative paths under dir, no
// symlink out, no hidden, settings or non-YAML file, and no text quoted
// from a file that is not a fragment), the file Load reads, and the
// http.tls files read at Bind, all opened through an os.Root. Without it
// a plan reads what its author names.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// stepsOptions are the steps options the plan's options imply.
func stepsOptions(opts []Option) []steps.Option {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.root == "" {
		return nil
	}
	return []steps.Option{steps.WithRoot(o.root)}
}

// readFile reads a file the plan names (a TLS file); the error names it by
// its base name (library messages carry no absolute paths). With a root
// the file must lie under it.
func (p *Plan) readFile(name string) ([]byte, error) {
	b, err := steps.ReadFileIn(p.root, name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return b, nil
}
