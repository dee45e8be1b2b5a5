#!/usr/bin/env bash
# Installs what building Outflow needs beyond Go and gcc: libpcap's headers
# (Debian libpcap-dev). github.com/dreadl0ck/ja3, which computes JA3/JA3S,
# carries a live-capture helper that links libpcap, so every binary that
# fingerprints TLS does. Sourced by demo.sh and test.sh.
if [ ! -e /usr/include/pcap.h ] && [ ! -e /usr/include/pcap/pcap.h ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "outflow: installing libpcap-dev (libpcap headers, needed to build)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends libpcap-dev >/dev/null
fi
