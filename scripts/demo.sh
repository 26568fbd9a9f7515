#!/usr/bin/env bash
# tmon demo: generate a two-point capture of a path with known delays and
# losses, run a collector and two probes as separate processes over UDP on
# loopback, replay the captures through the probes, print what the
# collector measured next to the generator's ground truth, then load the
# spool into SQLite and write the HTML report.
# No root, no database server. Run it with `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
OUT=${OUT:-demo-out}
CONF=${CONF:-examples/demo.xml}
COUNT=${COUNT:-24000}
RATE=${RATE:-100}          # datagrams per second: 24000 at 100/s is four minutes of traffic
REPORT=${REPORT:-1}        # 0: stop after the summary (leaves the spool unloaded)
SPEED=${SPEED:-40}         # replay 40 times faster than the original timing (0 = as fast as possible)

rm -rf "$OUT"
mkdir -p "$OUT/logs"
echo "== 1/5 generating $COUNT packets of traffic on path A → B into $OUT/traffic"
"$BIN/tmon-gen" -out "$OUT/traffic" -seed 1 -count "$COUNT" -rate "$RATE" \
  -delay uniform:18ms:22ms -loss 0.01 -dup 0.002 -frag 0.01 -clashes 5

echo "== 2/5 starting collector c1 (spool: $OUT/spool/c1)"
"$BIN/tmon-collector" -config "$CONF" -name c1 -spool "$OUT/spool/c1" \
  2>"$OUT/logs/collector.log" &
coll=$!
trap 'kill $coll 2>/dev/null || true' EXIT
sleep 0.3

echo "== 3/5 replaying hop A and hop B through probe-a and probe-b"
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

echo "== 4/5 what the collector measured (spool files in $OUT/spool/c1; logs in $OUT/logs)"
"$BIN/tmon" summary -truth "$OUT/traffic/truth.tsv" "$OUT/spool/c1"

[ "$REPORT" = 1 ] || exit 0
echo
echo "== 5/5 loading the spool into SQLite ($OUT/tmon.db) and writing the report ($OUT/report.html)"
"$BIN/tmon-loader" -spool "c1=$OUT/spool/c1" -db "sqlite:$OUT/tmon.db" 2>"$OUT/logs/loader.log" \
  || { echo "tmon-loader failed, see $OUT/logs/loader.log"; exit 1; }
"$BIN/tmon-report" -db "sqlite:$OUT/tmon.db" -period all -html "$OUT/report.html" 2>"$OUT/logs/report.log" \
  || { echo "tmon-report failed, see $OUT/logs/report.log"; exit 1; }
echo "The loader moved the spool files to $OUT/spool/c1/archive."
echo "Report: open $OUT/report.html in a browser (self-contained: charts and data inside), or serve the pages:"
echo "  $BIN/tmon-report -db sqlite:$OUT/tmon.db      # then http://127.0.0.1:8090/?period=all"
echo "  $BIN/tmon-report -db sqlite:$OUT/tmon.db -period all -pdf $OUT/report.pdf   # needs chromium"
