// Package atomicfile replaces files so that a crash leaves the old file or
// the new one, never a torn one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode perm: to a temporary file in the same
// directory (created 0600, so nobody reads it early), synced, given perm,
// renamed over path, and the directory synced so the rename lasts.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Replace writes data over path keeping its permissions (perm when path
// does not exist yet), as Write does.
func Replace(path string, data []byte, perm os.FileMode) error {
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	return Write(path, data, perm)
}
