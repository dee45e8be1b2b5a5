#!/usr/bin/env bash
# Replays the bundled capture (or the files given) and prints its flow
# records, one JSON object per line. Installs libpcap-dev first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
if [ $# -eq 0 ]; then
  set -- pcaps/outflow-demo.pcap
fi
exec go run ./cmd/outflow replay "$@"
