#!/usr/bin/env bash
# Side by side, the serve path: `plumb serve` against a hand-written net/http
# service (bench/handserve) doing the same three-step flow
# (bench/integration.yaml: JSON, SOAP/XPath, text/regex) against one sandbox
# (`plumb sandbox`), each in its own process on loopback. One load generator
# (bench/load) drives them alternately (the order flips every pair), PAIRS
# pairs per configuration, and the script prints the medians and the ratios
# plumb / hand-written, with the CPU time per lead of each service process:
#
#   run C=1, run C=32  POST /v1/integrations/NAME/run, one lead a request,
#                      C requests at once: leads/s, latency p50 / p99;
#   queue              POST /v1/integrations/NAME/leads, NDJSON bodies of
#                      BATCH leads, QUEUE_C bodies at once, then GET
#                      /v1/queue until empty: accepted/s, completed/s, POST
#                      latency p50 / p99. Every lead is read back and must be
#                      done with success.
#
# Then, for each service, the queue's completed leads/s and CPU per lead
# against its own /run at C=32 (medians), and the fsyncs per queued lead:
# a fresh process of each, run under `strace -f --seccomp-bpf -c`, takes
# QUEUE_N leads through its queue (accepted, run, stored) and every
# fsync/fdatasync it made, start and stop included, is divided by QUEUE_N
# (skipped without strace; FSYNC=0 skips it).
#
#   bench/compare-serve.sh                       # 3 pairs
#   PAIRS=5 RUN_N32=10000 bench/compare-serve.sh
#   QUEUE_FSYNC=1s bench/compare-serve.sh        # plumb --sync-interval 1s, handserve -fsync=false
#   PLUMB_BIN=/tmp/plumb-old bench/compare-serve.sh
#   ONLY="run1 run32" FSYNC=0 bench/compare-serve.sh  # some configurations only
#
# Both services run at most SERVE_CONC leads at once (plumb serve
# --concurrency). plumb serve stores every accepted lead in its embedded
# JetStream queue (fsynced on every write by default); handserve appends each
# body to a journal file, fsynced once per body, and queues in memory (no
# results across restarts, no dedupe, no dead letters): the queue ratio is
# the price of plumb's durability as much as of its engine. Everything is on
# loopback, every load run gives up after LOAD_DEADLINE, and the script
# stops the processes it started when it ends.
set -euo pipefail

cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3}
RUN_N1=${RUN_N1:-1000}
RUN_N32=${RUN_N32:-5000}
QUEUE_N=${QUEUE_N:-5000}
QUEUE_C=${QUEUE_C:-4}
BATCH=${BATCH:-100}
SERVE_CONC=${SERVE_CONC:-32}
QUEUE_FSYNC=${QUEUE_FSYNC:-always}
LOAD_DEADLINE=${LOAD_DEADLINE:-120s}
ONLY=${ONLY:-}           # run1 run32 queue4 (queueQUEUE_C): the configurations to measure; all when empty
PORT=${PORT:-18189} # sandbox; plumb serve on PORT+1, handserve on PORT+2

. bench/servekit.sh
kit_work plumb-compare-serve

plumb=${PLUMB_BIN:-}
if [ -z "$plumb" ]; then
	go build -o "$work/plumb" ./cmd/plumb
	plumb=$work/plumb
fi
go build -o "$work/handserve" ./bench/handserve
go build -o "$work/load" ./bench/load

sandbox=http://127.0.0.1:$PORT
declare -A urls=([plumb]=http://127.0.0.1:$((PORT + 1)) [hand]=http://127.0.0.1:$((PORT + 2)))

kit_dir "$sandbox"
mkdir -p "$work/data"
serve_flags=()
hand_flags=()
if [ "$QUEUE_FSYNC" != always ]; then
	serve_flags=(--sync-interval "$QUEUE_FSYNC")
	hand_flags=(-fsync=false)
fi

"$plumb" sandbox --addr 127.0.0.1:$PORT >"$work/sandbox.log" 2>&1 &
pids+=($!)
"$plumb" serve --dir "$work/dir" --data "$work/data" --addr 127.0.0.1:$((PORT + 1)) \
	--concurrency "$SERVE_CONC" "${serve_flags[@]}" >"$work/serve.log" 2>&1 &
pids+=($!)
declare -A spid=([plumb]=$!)
"$work/handserve" -addr 127.0.0.1:$((PORT + 2)) -base $sandbox -concurrency "$SERVE_CONC" \
	-journal "$work/journal" "${hand_flags[@]}" >"$work/handserve.log" 2>&1 &
pids+=($!)
spid[hand]=$!
kit_wait "$sandbox/" "${urls[plumb]}/readyz" "${urls[hand]}/readyz"

# the two must do the same work: compare their /run answers for a few leads
strip='s/,?"(duration_ms|waited_ms)":[0-9.]*//g'
for i in 1 2 3 7 42; do
	lead=$(printf '{"email":"lead%d@gmail.example","phone":"(512) 555-%04d","ip_address":"203.0.113.%d","postal_code":"78701","state":"TX","age":%d}' "$i" "$i" "$i" $((20 + i % 40)))
	for who in plumb hand; do
		curl -sS -H 'Content-Type: application/json' -d "$lead" "${urls[$who]}/v1/integrations/$NAME/run" |
			sed -E "$strip" >"$work/$who.out"
	done
	if ! cmp -s "$work/plumb.out" "$work/hand.out"; then
		echo "compare-serve.sh: plumb serve and handserve disagree on lead $i:" >&2
		diff "$work/plumb.out" "$work/hand.out" >&2 || true
		exit 1
	fi
done

# load WHO MODE C N: one load run; appends its figures to WHO-MODE-C
load() {
	local who=$1 mode=$2 c=$3 n=$4
	if ! timeout 300 "$work/load" -url "${urls[$who]}" -integration $NAME -mode "$mode" -c "$c" -n "$n" \
		-pid "${spid[$who]}" -batch "$BATCH" -deadline "$LOAD_DEADLINE" >>"$work/$who-$mode-$c" 2>"$work/load.err"; then
		echo "compare-serve.sh: $who $mode C=$c failed:" >&2
		cat "$work/load.err" >&2
		exit 1
	fi
}

# warm both up (connections, first allocations); not counted: the files are emptied below
for who in plumb hand; do
	load "$who" run 32 500
	load "$who" queue "$QUEUE_C" 500
done
rm -f "$work"/plumb-*-* "$work"/hand-*-*

col() { awk -v k="$2" '{print $k}' "$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   $(nproc) CPUs   $(date -u +%FT%TZ)"
echo "plumb serve --concurrency $SERVE_CONC, queue fsync $QUEUE_FSYNC; medians of $PAIRS alternating pairs"
printf '%-16s %6s | %12s %12s %6s | %17s %17s | %9s %9s %6s %6s | %s\n' \
	path leads "plumb lead/s" "hand lead/s" ratio "plumb p50/p99 ms" "hand p50/p99 ms" "plumb CPU" "hand CPU" "CPU x" "pairs" "pair ratios"
for cfg in "run 1 $RUN_N1" "run 32 $RUN_N32" "queue $QUEUE_C $QUEUE_N"; do
	read -r mode c n <<<"$cfg"
	case " $ONLY " in *" $mode$c "* | "  ") ;; *) continue ;; esac
	: >"$work/plumb-$mode-$c"
	: >"$work/hand-$mode-$c"
	for i in $(seq "$PAIRS"); do
		if [ $((i % 2)) = 1 ]; then
			load plumb "$mode" "$c" "$n"
			load hand "$mode" "$c" "$n"
		else
			load hand "$mode" "$c" "$n"
			load plumb "$mode" "$c" "$n"
		fi
	done
	p=$work/plumb-$mode-$c h=$work/hand-$mode-$c
	if [ "$mode" = run ]; then
		rows=("run C=$c:1")
	else
		rows=("queue accepted:1" "queue completed:2")
	fi
	for row in "${rows[@]}"; do
		label=${row%:*} k=${row##*:}
		if [ "$mode" = run ]; then lat=2 cpu=4; else lat=3 cpu=5; fi
		pc=$(col "$p" $cpu) hc=$(col "$h" $cpu)
		pr=$(col "$p" "$k") hr=$(col "$h" "$k")
		pl="$(col "$p" $lat)/$(col "$p" $((lat + 1)))" hl="$(col "$h" $lat)/$(col "$h" $((lat + 1)))"
		pairs=$(paste -d' ' "$p" "$h" | awk -v k="$k" '{n=NF/2; printf "%.2f ", $k/$(k+n)}')
		cpupairs=$(paste -d' ' "$p" "$h" | awk -v k="$cpu" '{n=NF/2; printf "%.3f\n", $k/$(k+n)}' | median)
		printf '%-16s %6s | %12.0f %12.0f %6s | %17s %17s | %7.0fµs %7.0fµs %6s %6s | %s\n' \
			"$label" "$n" "$pr" "$hr" "$(ratio "$pr" "$hr")" "$pl" "$hl" "$pc" "$hc" "$(ratio "$pc" "$hc")" "$cpupairs" "$pairs"
	done
done
# the queue against each service's own /run at C=32 (when both ran)
if [ -s "$work/plumb-queue-$QUEUE_C" ] && [ -s "$work/plumb-run-32" ]; then
	echo
	printf '%-8s %22s %22s\n' service "queue ÷ /run C=32" "CPU/lead queue ÷ /run"
	for who in plumb hand; do
		q=$work/$who-queue-$QUEUE_C r=$work/$who-run-32
		printf '%-8s %22s %22s\n' "$who" "$(ratio "$(col "$q" 2)" "$(col "$r" 1)")" "$(ratio "$(col "$q" 5)" "$(col "$r" 4)")"
	done
fi

# fsyncs per queued lead: a fresh process under strace, QUEUE_N leads
if [ "${FSYNC:-1}" != 0 ] && command -v strace >/dev/null 2>&1; then
	echo
	for who in plumb hand; do
		mkdir -p "$work/fsync-$who"
		addr=127.0.0.1:$((PORT + 3))
		if [ "$who" = plumb ]; then
			cmd=("$plumb" serve --dir "$work/dir" --data "$work/fsync-$who" --addr "$addr" --concurrency "$SERVE_CONC" "${serve_flags[@]}")
		else
			cmd=("$work/handserve" -addr "$addr" -base $sandbox -concurrency "$SERVE_CONC" -journal "$work/fsync-$who/journal" "${hand_flags[@]}")
		fi
		strace -f --seccomp-bpf -c -e trace=fsync,fdatasync,sync_file_range -o "$work/fsync-$who.txt" "${cmd[@]}" >"$work/fsync-$who.log" 2>&1 &
		tracer=$!
		for i in $(seq 100); do
			curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
			sleep 0.1
		done
		"$work/load" -url "http://$addr" -integration $NAME -mode queue -c "$QUEUE_C" -n "$QUEUE_N" -batch "$BATCH" \
			-deadline "$LOAD_DEADLINE" >/dev/null 2>"$work/load.err" || { cat "$work/load.err" >&2; exit 1; }
		kill "$(pgrep -P $tracer)" 2>/dev/null || true
		wait $tracer 2>/dev/null || true
		awk -v n="$QUEUE_N" -v who="$who" '$NF ~ /^(fsync|fdatasync|sync_file_range)$/ {s += $4}
			END {printf "fsyncs per queued lead, %s: %.3f (%d in all for %d leads, start and stop included)\n", who, s/n, s, n}' "$work/fsync-$who.txt"
	done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio: plumb ÷ hand-written (1.0 = as fast); pair ratios: the same for each pair."
echo "CPU x: the ratio of the medians; pairs: the median of the pairs' CPU ratios (less moved by the machine's drift)."
echo "CPU: the service process's user+system time per lead (/proc/PID/stat, 10 ms ticks; plumb's includes its embedded NATS server; the sandbox's and the load generator's are not counted)."
echo "latency: of the /run requests; for the queue, of the NDJSON POSTs ($BATCH leads each, stored before the 202)."
