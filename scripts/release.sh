#!/usr/bin/env bash
# scripts/release.sh [--snapshot] [--targets "GOOS/GOARCH ..."] [--jobs N] OUTDIR
#
# Builds plumb's release artifacts into OUTDIR (docs/install.md):
#
#   plumb-GOOS-GOARCH[.exe]      static binaries: CGO_ENABLED=0, -trimpath,
#                                -ldflags '-s -w', for linux, darwin and
#                                windows on amd64 and arm64
#   plumb-GOOS-GOARCH.cdx.json   a CycloneDX SBOM of each binary (the modules
#                                linked into it, and the binary's hashes)
#   SHA256SUMS                   the SHA-256 of every file above, in the
#                                format of `sha256sum -c`
#
# The version that `plumb version` prints is the main module's version in the
# binary's build information, which the go command stamps from git
# (-buildvcs=true, overriding a GOFLAGS=-buildvcs=false): the tag when the
# commit is tagged vX.Y.Z and the tree is clean, else a pseudo-version such as
# v0.0.0-20261207042902-7cbda0993a94, with +dirty for uncommitted changes.
# Without --snapshot the commit must carry a vX.Y.Z tag and the tree must be
# clean; --snapshot builds any commit, uncommitted changes included.
# Every binary's stamped version and build settings are checked after the
# build, and SHA256SUMS is verified.
#
# Go stamps the version only in a checkout whose .git is a directory, so run
# this in a clone, not in a `git worktree`. OUTDIR must be new or empty.
# --targets builds a subset (default: all six); --jobs N runs N builds at
# once (default 1: one go build already uses every core).
#
# Environment: CYCLONEDX_GOMOD (default
# github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0, built with
# `go install module@version` into a temporary directory: kept out of go.mod,
# whose requirements it would double).
set -euo pipefail

all_targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
cyclonedx=${CYCLONEDX_GOMOD:-github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0}

usage() {
	echo "usage: scripts/release.sh [--snapshot] [--targets \"GOOS/GOARCH ...\"] [--jobs N] OUTDIR" >&2
	exit 2
}
die() {
	echo "release.sh: $*" >&2
	exit 1
}

snapshot=0 targets=$all_targets jobs=1 out=""
while [ $# -gt 0 ]; do
	case $1 in
	--snapshot) snapshot=1 ;;
	--targets) [ $# -ge 2 ] || usage; targets=${2//,/ }; shift ;;
	--jobs) [ $# -ge 2 ] || usage; jobs=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
	-*) echo "release.sh: unknown flag $1" >&2; usage ;;
	*) [ -z "$out" ] || usage; out=$1 ;;
	esac
	shift
done
[ -n "$out" ] || usage
case $jobs in '' | *[!0-9]* | 0) die "--jobs $jobs: want a positive number" ;; esac
for t in $targets; do
	case " $all_targets " in *" $t "*) ;; *) die "--targets: unknown target $t (known: $all_targets)" ;; esac
done
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
	die "$out is not empty (artifacts of another build would be mixed in): give a new or empty directory"
fi
case $out in /*) ;; *) out=$PWD/$out ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Files written into the tree make it dirty, and every binary built after
# the first would be stamped +dirty: OUTDIR is outside it or ignored (dist/).
case $out/ in
"$root"/*) git check-ignore -q "$out/plumb-linux-amd64" || die "$out is inside the checkout and not ignored by git: use dist/ (ignored) or a directory outside it" ;;
esac
[ -d .git ] || die "$root/.git is not a directory (a git worktree or a source archive): Go stamps the version only in a git clone; run this in one (git clone $root /tmp/plumb-release)"
commit=$(git rev-parse HEAD)
module=$(go list -m)
tag=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || true)
if [ "$snapshot" = 0 ]; then
	[ -n "$tag" ] || die "HEAD ($commit) has no vX.Y.Z tag: tag the release (git tag v1.2.3) or build a --snapshot"
	echo "$tag" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$' || die "tag $tag is not a semantic version vX.Y.Z[-pre]"
	major=${tag%%.*}
	case $major in
	v0 | v1) ;;
	*) [ "${module##*/}" = "$major" ] || die "tag $tag: Go stamps a $major version only on a module whose path ends in /$major ($module)" ;;
	esac
	[ -z "$(git status --porcelain)" ] || die "the tree has uncommitted changes: commit or stash them, or build a --snapshot"
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)

# artifact TARGET: the binary's file name for GOOS/GOARCH.
artifact() {
	local name="plumb-${1%/*}-${1#*/}"
	[ "${1%/*}" = windows ] && name="$name.exe"
	echo "$name"
}

# build TARGET: one static binary, its log in OUTDIR/.NAME.log until it succeeds.
build() {
	local name log
	name=$(artifact "$1")
	log="$out/.$name.log"
	if CGO_ENABLED=0 GOOS=${1%/*} GOARCH=${1#*/} go build -buildvcs=true -trimpath -ldflags='-s -w' \
		-o "$out/$name" ./cmd/plumb >"$log" 2>&1; then
		rm -f "$log"
	else
		return 1
	fi
}

# Builds, at most $jobs at once; every failure is reported with its output.
label=$tag
[ "$snapshot" = 1 ] && label="snapshot of ${commit:0:12}"
echo "release.sh: building $targets ($label, $jobs at a time)" >&2
# shellcheck disable=SC2086 # split the list into targets
set -- $targets
failed=""
while [ $# -gt 0 ]; do
	pids=() batch=()
	while [ $# -gt 0 ] && [ ${#pids[@]} -lt "$jobs" ]; do
		build "$1" &
		pids+=($!) batch+=("$1")
		shift
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed="$failed ${batch[$i]}"
	done
done
if [ -n "$failed" ]; then
	for t in $failed; do
		echo "release.sh: go build for $t failed:" >&2
		cat "$out/.$(artifact "$t").log" >&2
	done
	exit 1
fi

# The stamp and the build settings of every binary, as `go version -m` reads
# them (-ldflags is not recorded with -trimpath: `go tool nm` finds no
# defined symbols when -s took effect).
version=""
for t in $targets; do
	name=$(artifact "$t")
	info=$(go version -m "$out/$name")
	v=$(echo "$info" | awk -v m="$module" '$1 == "mod" && $2 == m { print $3 }')
	if [ "$snapshot" = 0 ]; then
		[ "$v" = "$tag" ] || die "$name: stamped version '$v', want $tag"
	else
		case $v in
		*-"${commit:0:12}" | *-"${commit:0:12}+dirty") ;;
		*) if [ -z "$tag" ] || [ "$v" != "$tag" ]; then die "$name: stamped version '$v' does not name commit ${commit:0:12} (is git on PATH?)"; fi ;;
		esac
	fi
	version=$v
	for want in CGO_ENABLED=0 -trimpath=true "GOOS=${t%/*}" "GOARCH=${t#*/}"; do
		# a here-string, not `echo | grep -q`: under pipefail a pipe's
		# writer cut off by grep's early exit would fail the check
		grep -qx -- "	build	$want" <<<"$info" || die "$name: build setting $want missing from go version -m"
	done
	syms=$(go tool nm "$out/$name" 2>&1 || true) # Mach-O keeps its dynamic imports (U)
	case $syms in
	*"no symbols"*) ;;
	*) [ -z "$(echo "$syms" | awk '$(NF-1) != "U"' | head -1)" ] || die "$name: has a symbol table (built without -ldflags -s)" ;;
	esac
done

# The SBOM tool, built once for this host (not into OUTDIR).
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
GOOS='' GOARCH='' GOBIN=$tools go install "$cyclonedx"
for t in $targets; do
	name=$(artifact "$t")
	"$tools/cyclonedx-gomod" bin -json -notimestamp -noserial -output "$out/${name%.exe}.cdx.json" "$out/$name"
done

if command -v sha256sum >/dev/null 2>&1; then sum() { sha256sum "$@"; }; else sum() { shasum -a 256 "$@"; }; fi
(
	cd "$out"
	files=()
	for t in $targets; do
		name=$(artifact "$t")
		files+=("$name" "${name%.exe}.cdx.json")
	done
	sum "${files[@]}" >SHA256SUMS
	sum -c SHA256SUMS >/dev/null
)
echo "release.sh: plumb $version in $out:" >&2
(cd "$out" && ls -l plumb-* SHA256SUMS) >&2
