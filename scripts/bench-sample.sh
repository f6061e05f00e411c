#!/usr/bin/env bash
# bench-sample.sh: the cost of one sampling loop per thread, machtrace next to
# a minimal C ptrace loop (scripts/bench/cref.c), on the same C target with 1,
# 4 and 16 busy threads, side by side in one run. Needs gcc and root (or
# ptrace_scope 0). The machine is shared and noisy: compare the columns of one
# run, not runs with each other.
#
#   scripts/bench-sample.sh [ITER]        (default 2000 samples per cell)
#   REALTIME=1 scripts/bench-sample.sh    both loops at SCHED_FIFO priority 1 (root):
#                                         the setting of the reference figures in
#                                         shared/docs/ptrace-sampling.md
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${1:-2000}
rt=()
if [ -n "${REALTIME:-}" ]; then
	rt=(chrt -f 1)
	export BENCH_REALTIME=1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"; kill $(jobs -p) 2>/dev/null || true' EXIT
gcc -O2 -o "$out/busy" scripts/bench/busy.c -lpthread
gcc -O2 -o "$out/cref" scripts/bench/cref.c
go test -c -o "$out/tracer.test" ./tracer
echo "per thread per sample, ${REALTIME:+SCHED_FIFO, }$ITER samples per cell"
echo "threads  C loop        machtrace stop-all   machtrace lazy (default)"
for n in 1 4 16; do
	"$out/busy" "$n" 600 &
	busy=$!
	sleep 0.5
	c=$("${rt[@]}" "$out/cref" "$busy" "$ITER" | sed -n 's/.*: \([0-9.]*\) us\/thread/\1/p')
	go_cell() {
		BENCH_PID=$busy "$out/tracer.test" -test.run '^$' -test.bench "SampleLoop/busy=1/$1\$" -test.benchtime "${ITER}x" |
			sed -n 's/.* \([0-9.]*\) us\/thread.*/\1/p' | tail -1
	}
	stopall=$(go_cell stop-all)
	lazy=$(go_cell lazy)
	printf '%-8s %-13s %-20s %s\n' "$((n + 1))" "$c us" "$stopall us" "$lazy us"
	kill "$busy"
	wait "$busy" 2>/dev/null || true
done
