#!/usr/bin/env bash
# Times one Outflow worker with all inspection on against Debian's
# ndpiReader (one thread) on the same capture, side by side, alternating
# runs, and prints the median wall time of each and their ratio.
#
#   scripts/vs-ndpi.sh [CAPTURE] [ROUNDS] [TIMES]
#
# The default capture is the bundled recording read 50 times over (both tools
# get the same list of files). Installs libndpi-bin when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
cap=${1:-pcaps/outflow-demo.pcap}
rounds=${2:-7}
times=${3:-50}
if ! command -v ndpiReader >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends libndpi-bin >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/outflow" ./cmd/outflow
# ndpiReader reads a playlist of files; Outflow takes them as arguments.
for i in $(seq "$times"); do echo "$(realpath "$cap")"; done > "$work/list"
mapfile -t files < "$work/list"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
o=() n=()
for r in $(seq "$rounds"); do
  o+=("$(ms "$work/outflow" replay --quiet --workers 1 --flows /dev/null "${files[@]}")")
  n+=("$(ms ndpiReader -q -n 1 -i "$work/list")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mo=$(median "${o[@]}") mn=$(median "${n[@]}")
echo "capture: $cap x$times, $rounds rounds"
echo "outflow replay (1 worker, inspection on): ${mo} ms   runs: ${o[*]}"
echo "ndpiReader -n 1 ($(ndpiReader -h 2>&1 | grep -o 'nDPI [^ ]*' | head -1)): ${mn} ms   runs: ${n[*]}"
awk -v a="$mn" -v b="$mo" 'BEGIN{printf "ratio ndpiReader/outflow: %.2f\n", a/b}'
