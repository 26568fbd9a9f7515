#!/usr/bin/env bash
# tmon demo: generate a two-point capture of a path with known delays and
# losses, run a collector and two probes as separate processes over UDP on
# loopback, replay the captures through the probes, and print what the
# collector measured next to the generator's ground truth.
# No root, no database server. Run it with `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${OUT:-demo-out}
CONF=${CONF:-examples/demo.xml}
COUNT=${COUNT:-20000}
SPEED=${SPEED:-0}          # 0 = replay at full speed; 1 = original timing

rm -rf "$OUT"
mkdir -p "$OUT/logs"
echo "== 1/4 generating $COUNT packets of traffic on path A → B into $OUT/traffic"
"$BIN/tmon-gen" -out "$OUT/traffic" -seed 1 -count "$COUNT" -rate 2000 \
  -delay uniform:18ms:22ms -loss 0.01 -dup 0.002 -frag 0.01 -clashes 5

echo "== 2/4 starting collector c1 (spool: $OUT/spool/c1)"
"$BIN/tmon-collector" -config "$CONF" -name c1 -spool "$OUT/spool/c1" \
  2>"$OUT/logs/collector.log" &
coll=$!
trap 'kill $coll 2>/dev/null || true' EXIT
sleep 0.3

echo "== 3/4 replaying hop A and hop B through probe-a and probe-b"
"$BIN/tmon-probe" -config "$CONF" -name probe-a -read "$OUT/traffic/hop-a.pcap" -speed "$SPEED" \
  2>"$OUT/logs/probe-a.log" &
pa=$!
"$BIN/tmon-probe" -config "$CONF" -name probe-b -read "$OUT/traffic/hop-b.pcap" -speed "$SPEED" \
  2>"$OUT/logs/probe-b.log" &
pb=$!
wait $pa || { echo "probe-a failed, see $OUT/logs/probe-a.log"; exit 1; }
wait $pb || { echo "probe-b failed, see $OUT/logs/probe-b.log"; exit 1; }
kill -TERM $coll
wait $coll || { echo "collector failed, see $OUT/logs/collector.log"; exit 1; }
trap - EXIT

echo "== 4/4 what the collector measured (spool files in $OUT/spool/c1; logs in $OUT/logs)"
"$BIN/tmon" summary -truth "$OUT/traffic/truth.tsv" "$OUT/spool/c1"
