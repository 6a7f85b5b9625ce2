#!/usr/bin/env bash
# A/B of two `plumb serve` builds (or one build with two sets of flags) on
# POST /run: both start fresh, side by side, against one sandbox, and one
# load generator (bench/load) drives them alternately (the order flips every
# pair). It prints each side's median leads/s and CPU per lead, and the
# median of the per-pair CPU ratios B ÷ A, which this machine's drift moves
# least. Start both sides fresh, always: an instance that has served for an
# hour ran 5-10 % slower than a fresh one of the same binary here.
#
#   bench/ab-serve.sh /tmp/plumb-old /tmp/plumb-new
#   FLAGS_B="--log-level warn" bench/ab-serve.sh ./plumb ./plumb
#   PAIRS=16 C=1 N=600 bench/ab-serve.sh A B
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# = 2 ] || { echo "usage: bench/ab-serve.sh PLUMB_A PLUMB_B" >&2; exit 2; }
A=$1 B=$2
PAIRS=${PAIRS:-12}
C=${C:-32}
N=${N:-3000}
PORT=${PORT:-18489} # sandbox; A on PORT+1, B on PORT+2

. bench/servekit.sh
kit_work plumb-ab-serve
go build -o "$work/load" ./bench/load
kit_dir "http://127.0.0.1:$PORT"
mkdir -p "$work/a" "$work/b"

"$A" sandbox --addr 127.0.0.1:$PORT >"$work/sandbox.log" 2>&1 &
pids+=($!)
declare -A spid url
# shellcheck disable=SC2086 # FLAGS_A and FLAGS_B are word lists
"$A" serve --dir "$work/dir" --data "$work/a" --addr 127.0.0.1:$((PORT + 1)) --concurrency 32 ${FLAGS_A:-} >"$work/a.log" 2>&1 &
pids+=($!) spid[a]=$! url[a]=http://127.0.0.1:$((PORT + 1))
# shellcheck disable=SC2086
"$B" serve --dir "$work/dir" --data "$work/b" --addr 127.0.0.1:$((PORT + 2)) --concurrency 32 ${FLAGS_B:-} >"$work/b.log" 2>&1 &
pids+=($!) spid[b]=$! url[b]=http://127.0.0.1:$((PORT + 2))
kit_wait "http://127.0.0.1:$PORT/" "${url[a]}/readyz" "${url[b]}/readyz"

run() { # run SIDE: one load run, its figures appended to SIDE's file
	"$work/load" -url "${url[$1]}" -integration $NAME -mode run -c "$C" -n "$N" -pid "${spid[$1]}" >>"$work/$1.runs"
}
run a && run b # warm-up, not counted
: >"$work/a.runs"
: >"$work/b.runs"
for i in $(seq "$PAIRS"); do
	if [ $((i % 2)) = 1 ]; then run a && run b; else run b && run a; fi
done

echo "C=$C, $N leads a run, $PAIRS alternating pairs, both fresh; load before the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in a b; do
	printf '%s  leads/s %6.0f   CPU %4.0f µs a lead   p50 %s ms\n' "$s" \
		"$(awk '{print $1}' "$work/$s.runs" | median)" "$(awk '{print $4}' "$work/$s.runs" | median)" "$(awk '{print $2}' "$work/$s.runs" | median)"
done
paste -d' ' "$work/a.runs" "$work/b.runs" | awk '{print $8/$4}' | sort -g |
	awk '{v[NR]=$1} END{printf "CPU a lead, B ÷ A: median of the pairs %.3f (pairs %.3f-%.3f)\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[1], v[NR]}'
