package steps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
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

// includes merges the fragments in.Include names into in. Problems are
// positioned in the file that holds them: the include line for a missing
// file or a cycle, the fragment itself for what is wrong inside it.
func (in *Integration) includes(errs *ErrorList) {
	seen := map[string]bool{}
	if in.File != "" {
		if abs, err := filepath.Abs(in.File); err == nil {
			seen[abs] = true
		}
	}
	in.mergeIncludes(filepath.Dir(in.File), in.Include, seen, 0, errs)
}

func (in *Integration) mergeIncludes(dir string, list []String, seen map[string]bool, depth int, errs *ErrorList) {
	for _, inc := range list {
		if depth >= maxIncludeDepth {
			errs.Add(inc.Pos, "", "include: nested more than %d deep", maxIncludeDepth)
			return
		}
		path := inc.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		abs, _ := filepath.Abs(path)
		if seen[abs] {
			errs.Add(inc.Pos, "a fragment may be included once", "include: %s is included in a loop or twice", inc.Value)
			continue
		}
		seen[abs] = true
		f, ok := readFragment(path, inc.Pos, errs)
		if !ok {
			continue
		}
		in.merge(f)
		in.mergeIncludes(filepath.Dir(path), f.Include, seen, depth+1, errs)
	}
}

// readFragment reads and decodes one fragment file, strictly.
func readFragment(path string, at Pos, errs *ErrorList) (*Fragment, bool) {
	src, err := readSmallFile(path, maxFragmentBytes)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		errs.Add(at, "paths are relative to the file that includes them", "include: cannot read %s: %v", filepath.Base(path), err)
		return nil, false
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		*errs = append(*errs, syntaxError(path, src, err).(ErrorList)...)
		return nil, false
	}
	root := resolve(&doc)
	if root == nil || root.Kind == 0 {
		errs.Add(Pos{File: path, Line: 1, Col: 1}, "", "the included file is empty")
		return nil, false
	}
	before := len(*errs)
	if !checkYAML(path, &doc, errs) {
		return nil, false
	}
	f := &Fragment{}
	d := &decoder{file: path, errs: errs}
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

// maxFragmentBytes bounds an included file.
const maxFragmentBytes = 4 << 20

// readSmallFile reads a regular file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	return b, err
}
