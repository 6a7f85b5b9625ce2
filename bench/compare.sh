#!/usr/bin/env bash
# Side by side: `plumb run --output ndjson` against the hand-written client
# (bench/handwritten) on the same three-step flow (bench/integration.yaml:
# JSON, SOAP/XPath, text/regex) and the same leads, against one sandbox
# (`plumb sandbox`) in its own process. Whole processes, run alternately
# (the order flips every pair), PAIRS pairs per configuration; prints the
# medians of leads/s, CPU per lead (user+sys of the client process, from
# getrusage, see bench/measure) and peak RSS, and the ratios plumb /
# hand-written.
#
#   bench/compare.sh                      # 1,000 and 10,000 leads, C=1 and 32, 5 pairs
#   PAIRS=7 SIZES="10000" CONCS="32" bench/compare.sh
#   PLUMB_BIN=/tmp/plumb-old bench/compare.sh   # measure another plumb build
#   HAND_ARGS=-discard bench/compare.sh   # against a client that writes no results
#
# The sandbox and both clients share the machine: on a busy machine the
# absolute figures move by ±20 %; the ratio of a pair, run back to back,
# moves much less. Both clients must answer every lead with success, and
# their result lines must agree (durations aside), or the script stops.
set -euo pipefail

cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-5}
SIZES=${SIZES:-"1000 10000"}
CONCS=${CONCS:-"1 32"}
PORT=${PORT:-18089}

work=$(mktemp -d /tmp/plumb-compare.XXXXXX)
sandbox_pid=
cleanup() {
	[ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

plumb=${PLUMB_BIN:-}
if [ -z "$plumb" ]; then
	go build -o "$work/plumb" ./cmd/plumb
	plumb=$work/plumb
fi
go build -o "$work/handwritten" ./bench/handwritten
go build -o "$work/measure" ./bench/measure
hand=$work/handwritten
base=http://127.0.0.1:$PORT

"$plumb" sandbox --addr 127.0.0.1:$PORT >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 50); do
	curl -fsS "$base/" >/dev/null 2>&1 && break
	sleep 0.1
done

for n in 200 $SIZES; do
	awk -v n="$n" 'BEGIN{for(i=1;i<=n;i++) printf "{\"email\":\"lead%d@gmail.example\",\"phone\":\"(512) 555-%04d\",\"ip_address\":\"203.0.113.%d\",\"postal_code\":\"78701\",\"state\":\"TX\",\"age\":%d}\n", i, i%10000, i%250, 20+i%40}' >"$work/leads-$n.ndjson"
done

# the two must do the same work: compare their result lines once
strip='s/,?"(duration_ms|waited_ms)":[0-9.]*//g'
"$plumb" run --set base_url=$base --settings bench/settings.yaml --output ndjson \
	--leads "$work/leads-200.ndjson" bench/integration.yaml 2>/dev/null | sed -E "$strip" >"$work/plumb.out" || true
"$hand" -base $base -leads "$work/leads-200.ndjson" 2>/dev/null | sed -E "$strip" >"$work/hand.out"
if ! cmp -s "$work/plumb.out" "$work/hand.out"; then
	echo "compare.sh: plumb and the hand-written client disagree:" >&2
	diff "$work/plumb.out" "$work/hand.out" | head -5 >&2
	exit 1
fi

# run WHO N C: one whole process; appends "elapsed user sys maxrss_kb" to WHO-N-C
run() {
	local who=$1 n=$2 c=$3 leads=$work/leads-$2.ndjson out=$work/$1-$2-$3
	local cmd
	if [ "$who" = plumb ]; then
		cmd=("$plumb" run --set base_url=$base --settings bench/settings.yaml --output ndjson
			--concurrency "$c" --leads "$leads" bench/integration.yaml)
	else
		cmd=("$hand" -base $base -concurrency "$c" -leads "$leads" ${HAND_ARGS:-})
	fi
	"$work/measure" -o "$work/time" "${cmd[@]}" >/dev/null 2>"$work/stderr" || {
		echo "compare.sh: $who failed:" >&2
		cat "$work/stderr" >&2
		exit 1
	}
	if ! grep -q "summary: $n leads in .*: $n success" "$work/stderr"; then
		echo "compare.sh: $who did not succeed on every lead:" >&2
		cat "$work/stderr" >&2
		exit 1
	fi
	cat "$work/time" >>"$out"
}

median() { sort -g | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   $(nproc) CPUs   $(date -u +%FT%TZ)"
printf '%-6s %3s | %12s %12s %6s | %9s %9s %6s | %8s %8s | %s\n' \
	leads C "plumb lead/s" "hand lead/s" ratio "plumb CPU" "hand CPU" "CPU x" "plumb RSS" "hand RSS" "pair ratios"
for n in $SIZES; do
	for c in $CONCS; do
		: >"$work/plumb-$n-$c"
		: >"$work/hand-$n-$c"
		for i in $(seq "$PAIRS"); do
			if [ $((i % 2)) = 1 ]; then
				run plumb "$n" "$c"
				run hand "$n" "$c"
			else
				run hand "$n" "$c"
				run plumb "$n" "$c"
			fi
		done
		p=$work/plumb-$n-$c h=$work/hand-$n-$c
		prate=$(awk -v n="$n" '{print n/$1}' "$p" | median)
		hrate=$(awk -v n="$n" '{print n/$1}' "$h" | median)
		pcpu=$(awk -v n="$n" '{print ($2+$3)*1e6/n}' "$p" | median)
		hcpu=$(awk -v n="$n" '{print ($2+$3)*1e6/n}' "$h" | median)
		prss=$(awk '{print $4/1024}' "$p" | median)
		hrss=$(awk '{print $4/1024}' "$h" | median)
		pairs=$(paste -d' ' "$p" "$h" | awk '{printf "%.2f ", $5/$1}')
		printf '%-6s %3s | %12.0f %12.0f %6.3f | %7.0fµs %7.0fµs %6.3f | %6.1fMiB %6.1fMiB | %s\n' \
			"$n" "$c" "$prate" "$hrate" "$(awk -v a="$prate" -v b="$hrate" 'BEGIN{print a/b}')" \
			"$pcpu" "$hcpu" "$(awk -v a="$pcpu" -v b="$hcpu" 'BEGIN{print a/b}')" "$prss" "$hrss" "$pairs"
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio: plumb leads/s ÷ hand-written leads/s (1.0 = as fast); CPU x: plumb CPU per lead ÷ hand-written's;"
echo "medians of $PAIRS alternating pairs; pair ratios are hand elapsed ÷ plumb elapsed of each pair."
