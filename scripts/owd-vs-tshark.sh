#!/bin/bash
# owd-vs-tshark: `tmon owd` against a tshark pipeline on the same two
# captures (issue 11: at least 50× faster, aim 100×). Generates the two
# 50 000-packet captures of BenchmarkOwd (tmon-gen -seed 9 -count 50000
# -rate 10000 -ipv6 0 -background 0), then runs, alternately, RUNS times
# each:
#   - the tshark pipeline: both captures' fields (stamp, addresses, IP id,
#     ports, UDP checksum) extracted by two tshark processes in parallel,
#     then joined by awk on the invariant fields into delays;
#   - tmon owd on them, writing its spool (per-packet delays, histograms,
#     losses, IPPM metrics) and printing its summary;
#   - with OLD=path/to/tmon, that binary too (a before/after comparison).
# Prints the median and the minimum wall and CPU (user + system, children
# included) of each, the ratios, and the load average before and after:
# on a shared machine CPU time is steadier than wall time.
#
#   scripts/owd-vs-tshark.sh                  # 5 runs each
#   RUNS=9 OLD=/tmp/tmon-before scripts/owd-vs-tshark.sh
# Needs tshark, awk and GNU time (/usr/bin/time).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
for c in tshark awk /usr/bin/time; do
	command -v "$c" >/dev/null || { echo "owd-vs-tshark: $c not found" >&2; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/tmon" ./cmd/tmon
go build -o "$dir/tmon-gen" ./cmd/tmon-gen
"$dir/tmon-gen" -seed 9 -count 50000 -rate 10000 -ipv6 0 -background 0 -out "$dir/g" >/dev/null
a=$dir/g/hop-a.pcap b=$dir/g/hop-b.pcap

cat >"$dir/tshark.sh" <<EOF
f="-T fields -e frame.time_epoch -e ip.src -e ip.dst -e ip.id -e udp.srcport -e udp.dstport -e udp.checksum"
tshark -n -r $a \$f ip >$dir/a.tsv &
tshark -n -r $b \$f ip >$dir/b.tsv
wait
awk -F'\t' 'NR==FNR{k=\$2" "\$3" "\$4" "\$5" "\$6" "\$7; t[k]=\$1; next}
	{k=\$2" "\$3" "\$4" "\$5" "\$6" "\$7; if (k in t) {n++; s+=(\$1-t[k])}}
	END{printf "%d delays, mean %.6f s\n", n, s/n}' $dir/a.tsv $dir/b.tsv
EOF

# run NAME COMMAND...: one timed run, "wall cpu" appended to $dir/NAME.
run() {
	local name=$1
	shift
	/usr/bin/time -f "%e %U %S" -o "$dir/t" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || {
		cat "$dir/$name.err" >&2
		echo "owd-vs-tshark: $name failed" >&2
		exit 1
	}
	awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$dir/t" >>"$dir/$name.times"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$RUNS"); do
	run tshark sh "$dir/tshark.sh"
	rm -rf "$dir/sp" && run tmon "$dir/tmon" owd -spool "$dir/sp" "$a" "$b"
	if [ -n "${OLD:-}" ]; then
		rm -rf "$dir/sp" && run old "$OLD" owd -spool "$dir/sp" "$a" "$b"
	fi
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# stat NAME COLUMN: "median min" of a column (1 wall, 2 CPU).
stat() {
	sort -n -k"$2" "$dir/$1.times" | awk -v c="$2" '{v[NR]=$c} END{printf "%.3f %.3f\n", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[1]}'
}
echo "tshark pipeline: $(cat "$dir/tshark.out")"
echo "tmon owd:        $(head -1 "$dir/tmon.out")"
printf "%-16s %22s %22s\n" "" "wall s (median, min)" "CPU s (median, min)"
names="tshark tmon"
[ -n "${OLD:-}" ] && names="$names old"
for n in $names; do
	printf "%-16s %22s %22s\n" "$n" "$(stat "$n" 1)" "$(stat "$n" 2)"
done
ratio() { # ratio NAME COLUMN: tshark's median / NAME's median
	echo "$(stat tshark "$2") $(stat "$1" "$2")" | awk '{printf "%.1f", $1 / $3}'
}
echo "tshark / tmon owd: wall $(ratio tmon 1)×, CPU $(ratio tmon 2)× (medians of $RUNS runs each, $(nproc) cores)"
[ -n "${OLD:-}" ] && echo "tshark / old:      wall $(ratio old 1)×, CPU $(ratio old 2)×"
echo "load average (1, 5, 15 min): $load0 before, $load1 after"
