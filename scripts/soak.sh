#!/bin/bash
# Issue 16's soak: one `outflow run` under every flood of the issue's table
# at once, with real traffic alongside, for 10 minutes (pass -duration 2m
# for a short one). Prints peak memory and the counts; exits 1 if memory
# passed the budget or a real record was lost. Linux, from any directory;
# ../shared/testdata beside the checkout. By hand, not in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
bin=$(mktemp -d)/outflow
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/outflow
go run ./scripts/soak -outflow "$bin" "$@"
