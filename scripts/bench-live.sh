#!/bin/sh
# bench-live: the highest packet rate two live tmon probes hold on the netns
# lab path A — R (delay line) — B with zero kernel ring drops and every
# delay exact against independent captures. Steps the sender's rate up and
# prints a table. Needs root and iproute2 (as the live tests do).
#
#   scripts/bench-live.sh                       # default steps, 5 s each
#   TMON_BENCH_RATES=10000,50000 TMON_BENCH_SECONDS=3 scripts/bench-live.sh
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-live: needs root (network namespaces, AF_PACKET)" >&2
	exit 1
fi
out=$(mktemp)
log=$(mktemp)
trap 'rm -f "$out" "$log"' EXIT
echo "bench-live: stepping the rate up on the live lab (cores: $(nproc)); this takes a few minutes" >&2
# Without -race: the probes run as they would in a deployment.
if ! TMON_BENCH_LIVE=1 TMON_BENCH_OUT="$out" go test -count=1 -timeout 30m -run '^TestLiveBench$' -v ./e2e >"$log" 2>&1; then
	cat "$log" >&2
	echo "bench-live: the benchmark failed (output above)" >&2
	exit 1
fi
if [ ! -s "$out" ]; then
	grep -E -- '--- SKIP|live_bench' "$log" >&2 || cat "$log" >&2
	echo "bench-live: no table (skipped?)" >&2
	exit 1
fi
cat "$out"
