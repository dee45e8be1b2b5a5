#!/usr/bin/env bash
# With no arguments: replays the bundled detection lab (pcaps/outflow-detect.pcap
# with the host events recorded beside it) and prints its alerts, one JSON
# object per line: which process on which host sent what where. With files:
# replays them and prints their flow records. Installs libpcap-dev first if
# needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
if [ $# -eq 0 ]; then
  exec go run ./cmd/outflow replay --config pcaps/detect-lab.yaml --host-events pcaps/outflow-detect.events.jsonl \
    --flows /dev/null --alerts - pcaps/outflow-detect.pcap
fi
exec go run ./cmd/outflow replay "$@"
