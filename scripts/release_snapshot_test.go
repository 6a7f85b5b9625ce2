package scripts_test

import (
	"bufio"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReleaseSnapshot: `release.sh --snapshot OUTDIR` builds the six
// binaries (each for its OS and CPU, stripped, cgo off, stamped with the
// commit's pseudo-version), an SBOM per binary naming the modules linked into
// it and the binary's hash, and a SHA256SUMS that `sha256sum -c` verifies;
// the host binary prints its version, runs the README quick start and a
// scaffold's "Next:" commands; deploy/Containerfile copies an artifact that
// exists for each Linux architecture and starts a serve its flags fit.
func TestReleaseSnapshot(t *testing.T) {
	needBuild(t) // not parallel: the build uses every core
	dir := clone(t)
	clean := git(t, dir, "status", "--porcelain") == ""
	out := filepath.Join(dir, "dist") // as docs/install.md says; ignored by git
	args := []string{"--snapshot"}
	if j := os.Getenv("PLUMB_RELEASE_JOBS"); j != "" {
		args = append(args, "--jobs", j)
	}
	if text, code := release(t, dir, append(args, out)...); code != 0 {
		t.Fatalf("release.sh: exit %d\n%s", code, text)
	}
	head := strings.TrimSpace(git(t, dir, "rev-parse", "HEAD"))
	sums := checkSums(t, out)
	var version string
	for _, tg := range targets {
		name := artifact(tg[0], tg[1])
		v := checkBinary(t, filepath.Join(out, name), tg[0], tg[1], head)
		if clean && strings.HasSuffix(v, "+dirty") {
			t.Errorf("%s: stamped %s, but the tree was clean", name, v)
		}
		checkSBOM(t, out, name, v, sums[name])
		version = v
	}
	bin := filepath.Join(out, host())
	if got := run(t, "", bin, "version"); got != "plumb "+version+"\n" {
		t.Errorf("plumb version = %q, want %q", got, "plumb "+version+"\n")
	}
	checkQuickStart(t, dir, bin)
	checkScaffold(t, bin)
	checkContainerfile(t, dir, out, bin)
}

// checkSums: OUTDIR holds exactly the binaries, their SBOMs and SHA256SUMS,
// whose hashes are the files' and which the check docs/install.md gives
// users (grep the file's line | sha256sum -c) accepts. It returns the hashes by file name.
func checkSums(t *testing.T, out string) map[string]string {
	t.Helper()
	want := map[string]bool{"SHA256SUMS": true}
	for _, tg := range targets {
		want[artifact(tg[0], tg[1])] = true
		want[sbom(artifact(tg[0], tg[1]))] = true
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("unexpected file %s in OUTDIR", e.Name())
		}
		delete(want, e.Name())
	}
	for name := range want {
		t.Errorf("%s missing from OUTDIR", name)
	}
	sums := readSums(t, out)
	if len(sums) != len(entries)-1 {
		t.Errorf("SHA256SUMS lists %d files, want %d", len(sums), len(entries)-1)
	}
	for name, sum := range sums {
		if got := fileSum(t, filepath.Join(out, name)); got != sum {
			t.Errorf("SHA256SUMS: %s %s, file's is %s", name, sum, got)
		}
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		for name := range sums { // the check docs/install.md gives
			got := run(t, out, "bash", "-c", `grep " $0\$" SHA256SUMS | sha256sum -c`, name)
			if got != name+": OK\n" {
				t.Errorf("documented checksum check of %s printed %q", name, got)
			}
		}
	}
	return sums
}

// readSums parses OUTDIR/SHA256SUMS ("HASH  NAME" lines).
func readSums(t *testing.T, out string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		hash, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(hash) != 64 {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		sums[name] = hash
	}
	return sums
}

// fileSum is the hex SHA-256 of a file.
func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// checkBinary checks a binary's build information (stamped version naming
// head, cgo off, -trimpath, its GOOS/GOARCH) and its object file (machine,
// no symbol table; on Linux no interpreter and no shared library) and
// returns the stamped version.
func checkBinary(t *testing.T, path, goos, goarch, head string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	name := filepath.Base(path)
	v := bi.Main.Version
	if bi.Main.Path != module || !regexp.MustCompile(`^v[0-9.]+-[0-9.]*[0-9]{14}-`+head[:12]+`(\+dirty)?$`).MatchString(v) {
		t.Errorf("%s: main module %s %s, want %s at a pseudo-version of %s", name, bi.Main.Path, v, module, head[:12])
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": goos, "GOARCH": goarch, "vcs.revision": head} {
		if settings[k] != want {
			t.Errorf("%s: build setting %s=%q, want %q", name, k, settings[k], want)
		}
	}
	switch goos {
	case "linux":
		checkELF(t, path, goarch)
	case "darwin":
		checkMachO(t, path, goarch)
	case "windows":
		checkPE(t, path, goarch)
	}
	return v
}

// checkELF: the machine, no .symtab (-s), statically linked.
func checkELF(t *testing.T, path, goarch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if f.Machine != want {
		t.Errorf("%s: machine %v, want %v", path, f.Machine, want)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: has a symbol table (not built with -ldflags -s)", path)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: dynamically linked (%v)", path, p.Type)
		}
	}
}

// checkMachO: the CPU and no defined symbols (-s).
func checkMachO(t *testing.T, path, goarch string) {
	t.Helper()
	f, err := macho.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
	if f.Cpu != want {
		t.Errorf("%s: CPU %v, want %v", path, f.Cpu, want)
	}
	defined := 0 // the imports from libSystem stay, undefined (section 0)
	if f.Symtab != nil {
		for _, s := range f.Symtab.Syms {
			if s.Sect != 0 {
				defined++
			}
		}
	}
	if defined > 0 {
		t.Errorf("%s: %d defined symbols (not built with -ldflags -s)", path, defined)
	}
}

// checkPE: the machine and no COFF symbols (-s).
func checkPE(t *testing.T, path, goarch string) {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[goarch]
	if f.Machine != want {
		t.Errorf("%s: machine %#x, want %#x", path, f.Machine, want)
	}
	if f.NumberOfSymbols != 0 {
		t.Errorf("%s: %d symbols (not built with -ldflags -s)", path, f.NumberOfSymbols)
	}
}

// cyclonedx is the part of a CycloneDX JSON document the test reads.
type cyclonedx struct {
	BOMFormat string `json:"bomFormat"`
	Metadata  struct {
		Component  component `json:"component"`
		Properties []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"properties"`
	} `json:"metadata"`
	Components []component `json:"components"`
}

type component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// checkSBOM: the binary's SBOM is CycloneDX, names plumb at the stamped
// version, carries the binary's SHA-256 (the one in SHA256SUMS) and lists
// every module linked into the binary at its version.
func checkSBOM(t *testing.T, out, name, version, sum string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, sbom(name)))
	if err != nil {
		t.Fatal(err)
	}
	var doc cyclonedx
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", sbom(name), err)
	}
	if doc.BOMFormat != "CycloneDX" || doc.Metadata.Component != (component{module, version}) {
		t.Errorf("%s: %s of %+v, want CycloneDX of %s %s", sbom(name), doc.BOMFormat, doc.Metadata.Component, module, version)
	}
	props := map[string]string{}
	for _, p := range doc.Metadata.Properties {
		props[p.Name] = p.Value
	}
	if got := props["cdx:gomod:binary:hash:SHA-256"]; got != sum || sum == "" {
		t.Errorf("%s: binary hash %q, SHA256SUMS has %q", sbom(name), got, sum)
	}
	listed := map[component]bool{}
	for _, c := range doc.Components {
		listed[c] = true
	}
	bi, err := buildinfo.ReadFile(filepath.Join(out, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if !listed[component{d.Path, d.Version}] {
			t.Errorf("%s: module %s %s linked into %s is not listed", sbom(name), d.Path, d.Version, name)
		}
	}
	if len(bi.Deps) == 0 {
		t.Errorf("%s: no modules linked in", name)
	}
}

// checkQuickStart runs the plumb commands of the README's quick start
// (`go run ./cmd/plumb ARGS`) with the built binary, from the clone's root
// as the README says.
func checkQuickStart(t *testing.T, dir, bin string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## Quick start\n")
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	n := 0
	for _, line := range strings.Split(block, "\n") {
		rest, ok := strings.CutPrefix(line, "go run ./cmd/plumb ")
		if !ok {
			continue
		}
		n++
		if out := run(t, dir, "bash", "-c", `"$0" `+rest, bin); !strings.Contains(out, "summary:") && strings.HasPrefix(rest, "run ") {
			t.Errorf("quick start %q printed no summary:\n%s", line, out)
		}
	}
	if n == 0 {
		t.Errorf("README's quick start has no `go run ./cmd/plumb` command in its sh block:\n%s", block)
	}
}

// checkScaffold runs `plumb new demo` in an empty directory, then every
// command of its "Next:" list, as a new user would.
func checkScaffold(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	out := run(t, dir, bin, "new", "demo")
	_, next, ok := strings.Cut(out, "Next:\n")
	n := 0
	for _, line := range strings.Split(next, "\n") {
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "plumb" {
			continue
		}
		n++
		run(t, dir, bin, args[1:]...)
	}
	if !ok || n == 0 {
		t.Errorf("plumb new printed no Next: commands:\n%s", out)
	}
}

// checkContainerfile: deploy/Containerfile copies plumb-linux-${TARGETARCH}
// from the build context (OUTDIR), which exists for amd64 and arm64, to the
// path its ENTRYPOINT runs, and the ENTRYPOINT's serve flags are flags of
// the built `plumb serve`.
func checkContainerfile(t *testing.T, dir, out, bin string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "deploy", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var src, dst string
	var entry []string
	arg := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "ARG" && f[1] == "TARGETARCH":
			arg = true
		case len(f) == 3 && f[0] == "COPY":
			src, dst = f[1], f[2]
		case len(f) > 1 && f[0] == "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT")), &entry); err != nil {
				t.Fatalf("Containerfile ENTRYPOINT: %v", err)
			}
		}
	}
	if !arg || !strings.Contains(src, "${TARGETARCH}") {
		t.Fatalf("Containerfile: want ARG TARGETARCH and COPY plumb-linux-${TARGETARCH} DEST, have ARG %v, COPY %q", arg, src)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if _, err := os.Stat(filepath.Join(out, strings.ReplaceAll(src, "${TARGETARCH}", arch))); err != nil {
			t.Errorf("Containerfile copies %s: for %s: %v", src, arch, err)
		}
	}
	if len(entry) < 2 || entry[0] != dst || entry[1] != "serve" {
		t.Fatalf("Containerfile ENTRYPOINT %q, want [%q serve ...]", entry, dst)
	}
	cmd := exec.Command(bin, "serve", "--help")
	help, _ := cmd.CombinedOutput()
	for _, a := range entry[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok && !regexp.MustCompile(`(?m)^\s+--?`+regexp.QuoteMeta(name)+`\b`).Match(help) {
			t.Errorf("Containerfile ENTRYPOINT passes %s, which plumb serve --help does not list", a)
		}
	}
}
