#!/bin/bash
# Runs every fuzz target of the module for a while each (default 10m), one
# after another with one worker, the way the README's fuzz figures were
# taken; by hand, not in CI. Each target's output goes to DIR/PKG_TARGET.log,
# and a target whose log already says it finished is skipped, so a run that
# was stopped goes on where it was.
#   scripts/fuzz-all.sh [-t 10m] [-d DIR] [PKG...]
set -uo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
time=10m dir=fuzz-logs
while getopts t:d: o; do
  case $o in
    t) time=$OPTARG ;;
    d) dir=$OPTARG ;;
    *) echo "usage: $0 [-t 10m] [-d DIR] [PKG...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
mkdir -p "$dir"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || mapfile -t pkgs < <(go list ./...)
failed=0
for pkg in "${pkgs[@]}"; do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
    log="$dir/$(echo "${pkg#github.com/outflow-sensor/outflow/}" | tr / _)_$target.log"
    if grep -q '^ok\|^FAIL' "$log" 2>/dev/null; then
      continue
    fi
    echo "$(date -u +%FT%TZ) $pkg $target"
    go test -run XXX -fuzz "^$target\$" -fuzztime "$time" -parallel 1 "$pkg" > "$log" 2>&1 || failed=1
    tail -1 "$log"
    grep -o 'execs: [0-9]*' "$log" | tail -1
  done
done
exit $failed
