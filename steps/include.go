package steps

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Fragment is a shared file an integration includes (include: [file]):
// what several integrations of one partner have in common. Its keys are
// merged under the including file's own: a setting, var or auth the
// integration declares itself wins; retry rules of the fragment come after
// the integration's own.
type Fragment struct {
	// Include lists further fragments, relative to this file.
	Include  []String      `yaml:"include"`
	Settings Map[*Setting] `yaml:"settings"`
	Auth     *Auth         `yaml:"auth"`
	Vars     Map[Value]    `yaml:"vars"`
	HTTP     *HTTP         `yaml:"http"`
	Deadline time.Duration `yaml:"deadline"`
	Retry    []*RetryRule  `yaml:"retry"`
	Pos      Pos           `yaml:"-"`
}

// maxIncludeDepth bounds nested includes.
const maxIncludeDepth = 8

// Option changes how Load, Parse and ParseAll read a file.
type Option func(*loadConfig)

// loadConfig is what the options set.
type loadConfig struct {
	// root, when set, is the directory every file read must lie under.
	root string
}

// WithRoot confines what a file includes to the directory dir, for a file
// written by someone the reader does not trust as it trusts its operator
// (plumb serve's test console, which loads drafts typed in a web page):
//
//   - an include is a relative path that stays under dir once joined to the
//     including file's directory, and no symlink on the way leads out of
//     dir (the files are opened through an [os.Root]);
//   - hidden names (a part starting with "."), settings files
//     (settings.yaml, NAME.settings.yaml) and files not ending in .yaml or
//     .yml are refused, so are all includes of a file that is not under dir;
//   - a fragment that does not read as one (invalid YAML, not a mapping of
//     fragment keys) is reported by its position only: no message quotes
//     text of a file that is not an integration file.
//
// Load reads its file through the root too. Without WithRoot a file
// includes any path its author names, as the CLI trusts its author.
func WithRoot(dir string) Option { return func(c *loadConfig) { c.root = dir } }

func newLoadConfig(opts []Option) *loadConfig {
	c := &loadConfig{}
	for _, o := range opts {
		o(c)
	}
	return c
}

// readFile reads the integration file at path, through the root if one is
// set.
func (c *loadConfig) readFile(path string) ([]byte, error) {
	return ReadFileIn(c.root, path)
}

// ReadFileIn is ReadFile confined to the directory root when it is not ""
// (as WithRoot confines a load): path must lie under it, and no symlink on
// the way may lead out of it.
func ReadFileIn(root, path string) ([]byte, error) {
	if root == "" {
		return ReadFile(path)
	}
	rel, ok := underRoot(root, path)
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("not under the directory files are read from")}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readFileIn(r, rel, MaxFileBytes)
}

// underRoot returns path relative to root when it lies under it (by name:
// symlinks are the os.Root's to refuse).
func underRoot(root, path string) (string, bool) {
	absRoot, err1 := filepath.Abs(root)
	absPath, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(absRoot, absPath)
	if err != nil || !filepath.IsLocal(rel) {
		return "", false
	}
	return rel, true
}

// includer merges the fragments of one file: unconfined, dirs are paths
// as given; with a root, they are relative to it and files are opened
// through it.
type includer struct {
	in   *Integration
	cfg  *loadConfig
	root *os.Root // opened on the first include (with cfg.root)
	bad  string   // why no include can be read (with cfg.root)
	seen map[string]bool
	errs *ErrorList
}

// includes merges the fragments in.Include names into in. Problems are
// positioned in the file that holds them: the include line for a missing
// file or a cycle, the fragment itself for what is wrong inside it.
func (in *Integration) includes(cfg *loadConfig, errs *ErrorList) {
	if len(in.Include) == 0 {
		return
	}
	inc := &includer{in: in, cfg: cfg, seen: map[string]bool{}, errs: errs}
	dir := filepath.Dir(in.File)
	if cfg.root == "" {
		if in.File != "" {
			if abs, err := filepath.Abs(in.File); err == nil {
				inc.seen[abs] = true
			}
		}
	} else {
		rel, ok := underRoot(cfg.root, in.File)
		if !ok {
			inc.bad = "the including file is not under the directory fragments are read from"
		} else if r, err := os.OpenRoot(cfg.root); err != nil {
			inc.bad = "the directory fragments are read from cannot be opened"
		} else {
			inc.root = r
			defer r.Close()
			inc.seen[rel] = true
			dir = filepath.Dir(rel)
		}
	}
	inc.merge(dir, in.Include, 0)
}

func (c *includer) merge(dir string, list []String, depth int) {
	for _, inc := range list {
		if depth >= maxIncludeDepth {
			c.errs.Add(inc.Pos, "", "include: nested more than %d deep", maxIncludeDepth)
			return
		}
		path, key, ok := c.path(dir, inc)
		if !ok {
			continue
		}
		if c.seen[key] {
			c.errs.Add(inc.Pos, "a fragment may be included once", "include: %s is included in a loop or twice", inc.Value)
			continue
		}
		c.seen[key] = true
		f := c.read(path, inc.Pos)
		if f == nil {
			continue
		}
		c.in.merge(f)
		c.merge(filepath.Dir(path), f.Include, depth+1)
	}
}

// path is where an include points (relative to the root, with one) and its
// key in seen.
func (c *includer) path(dir string, inc String) (path, key string, ok bool) {
	if c.cfg.root == "" {
		path := inc.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		abs, _ := filepath.Abs(path)
		return path, abs, true
	}
	const hint = "fragments are read only from the service's directory: a relative path to a .yaml file under it"
	v := inc.Value
	switch {
	case c.bad != "":
		c.errs.Add(inc.Pos, hint, "include: %s: %s", v, c.bad)
	case v == "" || filepath.IsAbs(v) || filepath.VolumeName(v) != "" || strings.HasPrefix(v, "/") || strings.HasPrefix(v, `\`):
		c.errs.Add(inc.Pos, hint, "include: %s: an absolute path", v)
	case !filepath.IsLocal(filepath.Join(dir, v)):
		c.errs.Add(inc.Pos, hint, "include: %s leads out of the directory", v)
	default:
		rel := filepath.Join(dir, v)
		if why := refusedName(rel); why != "" {
			c.errs.Add(inc.Pos, hint, "include: %s: %s", v, why)
			return "", "", false
		}
		return rel, rel, true
	}
	return "", "", false
}

// refusedName says why a confined include may not read rel ("" if it may):
// what is hidden, a settings file or not YAML is never a fragment.
func refusedName(rel string) string {
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if strings.HasPrefix(part, ".") {
			return "a hidden file or directory"
		}
	}
	base := filepath.Base(rel)
	ext := strings.ToLower(filepath.Ext(base))
	if ext != ".yaml" && ext != ".yml" {
		return "not a .yaml or .yml file"
	}
	stem := strings.ToLower(strings.TrimSuffix(base, filepath.Ext(base)))
	if stem == "settings" || strings.HasSuffix(stem, ".settings") {
		return "a settings file"
	}
	return ""
}

// read reads and decodes one fragment, nil when it cannot be merged.
// Unconfined, a fragment with key or type errors is merged as far as it
// decoded, as the main file is kept as far as it decoded: the rest of it
// is then checked and compiled with the file, so every problem of the
// fragment is reported in one run. With a root, what is wrong inside a
// fragment that does not decode is reported without quoting it, and
// nothing of it is merged.
func (c *includer) read(path string, at Pos) *Fragment {
	if c.root == nil {
		f, _ := readFragment(path, path, at, c.errs, ReadFile)
		return f
	}
	name := filepath.Join(c.cfg.root, path)
	var local ErrorList
	f, ok := readFragment(path, name, at, &local, func(p string) ([]byte, error) { return readFileIn(c.root, p, MaxFileBytes) })
	if ok {
		*c.errs = append(*c.errs, local...)
		return f
	}
	for _, e := range local {
		if e.Pos.File != name {
			*c.errs = append(*c.errs, e) // about the include line, quoting nothing read
			continue
		}
		// the file's own problems may quote it: only where, and how many
		c.errs.Add(e.Pos, "the console shows no text of a file that is not a fragment; check it on the server (plumb validate)",
			"include: %s does not read as a fragment (problems: %d, the first here)", filepath.Base(name), countIn(local, name))
		break
	}
	return nil
}

func countIn(l ErrorList, file string) int {
	n := 0
	for _, e := range l {
		if e.Pos.File == file {
			n++
		}
	}
	return n
}

// readFragment reads (with read) and decodes one fragment file, strictly;
// name is the file in positions. It returns the fragment as far as it
// decoded (nil when it is unreadable or not YAML) and whether it decoded
// without a problem.
func readFragment(path, name string, at Pos, errs *ErrorList, read func(string) ([]byte, error)) (*Fragment, bool) {
	src, err := read(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if err.Error() == "path escapes from parent" {
			errs.Add(at, "fragments are read only from the service's directory; a symlink there may not lead out of it", "include: %s leads out of the directory", filepath.Base(name))
			return nil, false
		}
		errs.Add(at, "paths are relative to the file that includes them", "include: cannot read %s: %v", filepath.Base(name), err)
		return nil, false
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		*errs = append(*errs, syntaxError(name, src, err).(ErrorList)...)
		return nil, false
	}
	root := resolve(&doc)
	if root == nil || root.Kind == 0 {
		errs.Add(Pos{File: name, Line: 1, Col: 1}, "", "the included file is empty")
		return nil, false
	}
	before := len(*errs)
	if !checkYAML(name, &doc, errs) {
		return nil, false
	}
	f := &Fragment{}
	d := &decoder{file: name, lines: splitLines(src), errs: errs}
	d.decode(root, reflect.ValueOf(f).Elem(), "fragment")
	return f, len(*errs) == before
}

// merge adds what f declares and in does not.
func (in *Integration) merge(f *Fragment) {
	for _, e := range f.Settings {
		if _, ok := in.Settings.Get(e.Key); !ok {
			in.Settings = append(in.Settings, e)
		}
	}
	// fragment vars come first: the integration's may read them
	var vars Map[Value]
	for _, e := range f.Vars {
		if _, ok := in.Vars.Get(e.Key); !ok {
			vars = append(vars, e)
		}
	}
	in.Vars = append(vars, in.Vars...)
	if in.Auth == nil {
		in.Auth = f.Auth
	}
	if in.HTTP == nil {
		in.HTTP = f.HTTP
	}
	if in.Deadline == 0 {
		in.Deadline = f.Deadline
	}
	in.Retry = append(in.Retry, f.Retry...)
}
