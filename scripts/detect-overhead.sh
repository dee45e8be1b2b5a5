#!/usr/bin/env bash
# What detection adds to a replay, as a process: runs `outflow replay` on
# the files given, without and with --alerts, alternately, N times (default
# 25), and prints the median and fastest wall-clock times of each.
#   scripts/detect-overhead.sh [-n N] FILE...
# The synthetic files of 150k short flows (packets 1 us apart, all ending at
# the end; 600 us apart, ending as the replay goes) are written by
#   OUTFLOW_KEEP_PCAP=/tmp go test ./sensor -run XXX -bench ReplayDetect/small -benchtime 1x
# as /tmp/bench-1µs.pcap and /tmp/bench-600µs.pcap.
set -euo pipefail
cd "$(dirname "$0")/.."
n=25
if [ "${1:-}" = -n ]; then n=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n N] FILE..." >&2; exit 2; }
. scripts/deps.sh
bin=$(mktemp -d)/outflow
go build -o "$bin" ./cmd/outflow
for i in $(seq "$n"); do
  for mode in off on; do
    extra=()
    [ $mode = on ] && extra=(--alerts /dev/null)
    s=$(date +%s%N)
    "$bin" replay --quiet --flows /dev/null "${extra[@]}" "$@"
    e=$(date +%s%N)
    echo "$mode $(((e - s) / 1000000))"
  done
done | sort -k1,1 -k2n | awk '
  { v[$1] = v[$1] " " $2; c[$1]++ }
  END { for (k in v) { split(substr(v[k], 2), a, " "); printf "detection %s: median %d ms, fastest %d ms (%d runs)\n", k, a[int((c[k] + 1) / 2)], a[1], c[k] } }'
rm -rf "$(dirname "$bin")"
