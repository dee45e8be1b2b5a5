#!/usr/bin/env bash
# Runs the whole test suite: installs the Debian tools the tests use (tshark,
# tcpdump, iproute2, ...) when they are missing, checks formatting and
# static analysis, then runs go test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in tshark:tshark tcpdump:tcpdump ip:iproute2 ethtool:ethtool curl:curl socat:socat tcpreplay:tcpreplay openssl:openssl softflowd:softflowd nfdump:nfdump pmacctd:pmacct fprobe:fprobe wget:wget python3:python3 logrotate:logrotate nginx:nginx rsyslogd:rsyslog editcap:wireshark-common chromium:chromium systemd-analyze:systemd setpriv:util-linux useradd:passwd pkg-config:pkg-config zstd:zstd xz:xz-utils bzip2:bzip2 zip:zip 7z:p7zip-full gpg:gnupg age:age pnmtopng:netpbm cjpeg:libjpeg-turbo-progs logger:bsdutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# The syslog sink's tests run rsyslog over TLS too: its gtls driver is a
# package of its own.
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || need+=(rsyslog-gnutls)
# The report's browser test reads text Chromium laid out: it needs a font.
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: WARNING: missing ${need[*]} and not root: tests that need them will skip (and fail in CI)" >&2
  fi
fi

. scripts/deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# staticcheck comes from the Go module proxy, pinned.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

go test -race -count=1 -timeout 30m ./...
