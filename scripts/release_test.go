// Package scripts_test tests scripts/release.sh (docs/install.md).
//
// TestReleaseRefuses builds nothing and runs with every go test. The tests
// that build binaries take minutes and run only with PLUMB_RELEASE_TEST=1,
// which .ci/run sets for its release step. Each test works in a clone of
// the checkout's HEAD plus its uncommitted changes, so the checkout itself
// is never tagged or built in.
package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/plumbhq/plumb"

// targets are the GOOS/GOARCH pairs release.sh builds by default.
var targets = [][2]string{
	{"linux", "amd64"}, {"linux", "arm64"},
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// artifact is the binary's file name for a target.
func artifact(goos, goarch string) string {
	name := "plumb-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

// sbom is the file name of the SBOM of a binary.
func sbom(binary string) string {
	return strings.TrimSuffix(binary, ".exe") + ".cdx.json"
}

// clone makes a clone of the checkout at its HEAD commit, with the working
// tree's uncommitted changes applied, and returns the clone's root.
func clone(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	src := strings.TrimSpace(string(top))
	head := strings.TrimSpace(git(t, src, "rev-parse", "HEAD"))
	dir := filepath.Join(t.TempDir(), "plumb")
	git(t, "", "clone", "-q", "--no-tags", "--no-checkout", src, dir)
	git(t, dir, "checkout", "-q", "--detach", head)
	overlay(t, src, dir)
	return dir
}

// overlay applies src's uncommitted changes to tracked files to dir (a
// clone of src's HEAD), so a test sees the working tree's script,
// Containerfile and README; dir stays clean when there are none.
func overlay(t *testing.T, src, dir string) {
	t.Helper()
	diff := git(t, src, "diff", "--binary", "HEAD")
	if diff == "" {
		return
	}
	cmd := exec.Command("git", "apply", "--whitespace=nowarn")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(diff)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply of the working tree's changes: %v\n%s", err, out)
	}
}

// git runs git in dir and returns its output; it fails the test on an error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t.example",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t.example")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// release runs dir's scripts/release.sh and returns its output and exit code.
func release(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "scripts", "release.sh"), args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("release.sh: %v", err)
	}
	return out.String(), 0
}

// TestReleaseRefuses: release.sh refuses bad arguments, a release of an
// untagged, badly tagged or dirty commit, a non-empty OUTDIR, an OUTDIR in
// the tree that git does not ignore (it would dirty the stamp) and a git
// worktree (where Go cannot stamp the version) with exit 2 for usage and 1
// otherwise, a message saying why, and nothing built.
func TestReleaseRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, out string) string // returns the dir to run in
		args  []string
		code  int
		want  string
	}{
		{"unknown flag", nil, []string{"--bogus", "OUT"}, 2, "unknown flag --bogus"},
		{"no outdir", nil, []string{"--snapshot"}, 2, "usage: scripts/release.sh"},
		{"two outdirs", nil, []string{"--snapshot", "OUT", "more"}, 2, "usage: scripts/release.sh"},
		{"unknown target", nil, []string{"--snapshot", "--targets", "linux/amd64,plan9/amd64", "OUT"}, 1, "unknown target plan9/amd64"},
		{"zero jobs", nil, []string{"--snapshot", "--jobs", "0", "OUT"}, 1, "--jobs 0: want a positive number"},
		{"non-empty outdir", func(t *testing.T, dir, out string) string {
			write(t, filepath.Join(out, "plumb-old"), "an earlier build")
			return dir
		}, []string{"--snapshot", "OUT"}, 1, "is not empty"},
		{"untagged release", nil, []string{"OUT"}, 1, "has no vX.Y.Z tag"},
		{"tag not semver", func(t *testing.T, dir, _ string) string {
			git(t, dir, "tag", "v1.2")
			return dir
		}, []string{"OUT"}, 1, "tag v1.2 is not a semantic version"},
		{"major version without /vN", func(t *testing.T, dir, _ string) string {
			git(t, dir, "tag", "v2.0.0")
			return dir
		}, []string{"OUT"}, 1, "Go stamps a v2 version only on a module whose path ends in /v2"},
		{"dirty release", func(t *testing.T, dir, _ string) string {
			git(t, dir, "tag", "v1.9.9")
			write(t, filepath.Join(dir, "stray.txt"), "not committed")
			return dir
		}, []string{"OUT"}, 1, "uncommitted changes"},
		{"outdir in the tree", nil, []string{"--snapshot", "IN/build"}, 1, "inside the checkout and not ignored by git"},
		{"worktree", func(t *testing.T, dir, _ string) string {
			wt := filepath.Join(filepath.Dir(dir), "wt")
			git(t, dir, "worktree", "add", "-q", "--detach", wt)
			overlay(t, dir, wt)
			return wt
		}, []string{"--snapshot", "OUT"}, 1, ".git is not a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := clone(t)
			out := filepath.Join(t.TempDir(), "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.setup != nil {
				dir = c.setup(t, dir, out)
			}
			// a broken refusal builds one binary, not six
			args := append([]string{"--targets", runtime.GOOS + "/" + runtime.GOARCH}, c.args...)
			for i, a := range args {
				switch {
				case a == "OUT":
					args[i] = out
				case strings.HasPrefix(a, "IN/"):
					args[i] = filepath.Join(dir, a[len("IN/"):])
				}
			}
			text, code := release(t, dir, args...)
			if code != c.code || !strings.Contains(text, c.want) {
				t.Errorf("release.sh %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, text)
			}
			if built, _ := filepath.Glob(filepath.Join(out, "plumb-*-*")); len(built) > 0 {
				t.Errorf("built %v although refused", built)
			}
		})
	}
}

// write writes a file, making its directory.
func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// needBuild skips a test that builds binaries unless PLUMB_RELEASE_TEST=1.
func needBuild(t *testing.T) {
	t.Helper()
	if os.Getenv("PLUMB_RELEASE_TEST") != "1" {
		t.Skip("builds release binaries (minutes): set PLUMB_RELEASE_TEST=1 (.ci/run does)")
	}
}

// host is the artifact that runs on this machine.
func host() string { return artifact(runtime.GOOS, runtime.GOARCH) }

// TestReleaseTagged: on a clean commit tagged vX.Y.Z, release.sh (no
// --snapshot) stamps exactly the tag: `plumb version` prints it.
func TestReleaseTagged(t *testing.T) {
	needBuild(t) // not parallel: the build uses every core
	dir := clone(t)
	if git(t, dir, "status", "--porcelain") != "" { // the working tree had uncommitted changes
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-q", "-m", "the working tree's changes")
	}
	git(t, dir, "tag", "v1.98.7")
	out := filepath.Join(t.TempDir(), "dist")
	if text, code := release(t, dir, "--targets", runtime.GOOS+"/"+runtime.GOARCH, out); code != 0 {
		t.Fatalf("release.sh: exit %d\n%s", code, text)
	}
	got := run(t, "", filepath.Join(out, host()), "version")
	if got != "plumb v1.98.7\n" {
		t.Errorf("plumb version = %q, want %q", got, "plumb v1.98.7\n")
	}
	sums := readSums(t, out)
	if len(sums) != 2 || sums[host()] == "" || sums[sbom(host())] == "" {
		t.Errorf("SHA256SUMS lists %v, want %s and its SBOM", sums, host())
	}
}

// run runs a command in dir and returns its combined output; it fails the
// test on a non-zero exit.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
