# Shared by bench/compare-serve.sh and bench/ab-serve.sh (sourced, not run):
# a work directory removed at exit with the processes started into it, the
# three-step integration served from it, a wait for services to come up,
# and a median.

NAME=bench-three-step

# kit_work PREFIX: make $work and stop every pid in $pids, then remove
# $work, when the script ends.
kit_work() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	pids=()
	trap kit_cleanup EXIT
	trap 'exit 130' INT TERM HUP PIPE
}

kit_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

# kit_dir SANDBOX_URL: $work/dir holds bench/integration.yaml as $NAME,
# with its settings pointed at the sandbox.
kit_dir() {
	mkdir -p "$work/dir"
	cp bench/integration.yaml "$work/dir/$NAME.yaml"
	{ cat bench/settings.yaml; echo "base_url: $1"; } >"$work/dir/$NAME.settings.yaml"
	chmod 600 "$work/dir/$NAME.settings.yaml"
}

# kit_wait URL...: wait up to 10 s for each URL to answer 2xx; else print
# the logs in $work and exit 1.
kit_wait() {
	local u i
	for u in "$@"; do
		for i in $(seq 100); do
			curl -fsS "$u" >/dev/null 2>&1 && break
			if [ "$i" = 100 ]; then
				echo "$(basename "$0"): $u did not come up" >&2
				cat "$work"/*.log >&2
				exit 1
			fi
			sleep 0.1
		done
	done
}

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
