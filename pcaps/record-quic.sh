#!/usr/bin/env bash
# Records pcaps/outflow-quic.pcap: HTTP/3 over QUIC v1 and v2 between two
# network namespaces, from quic-go (pcaps/quicpeer; Debian's curl has no
# HTTP/3). Each client connection fetches a small page and uploads random
# bytes. What client and server reported goes to pcaps/reported/quic-*.jsonl.
#
# Run as root, by hand: sudo bash pcaps/record-quic.sh
# Needs: Go (builds quicpeer from the module proxy), tcpdump, openssl,
# iproute2, ethtool.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=of-rq-client S=of-rq-server
CLIENT=10.77.0.2 SERVER=198.51.100.10
NAME=quic.example-storage.test
out=$here/outflow-quic.pcap rep=$here/reported
begin $C $S

need go tcpdump openssl ip ethtool
(cd quicpeer && go build -o "$work/quicpeer" .)

two_hosts $C $S of-rq-c of-rq-s $CLIENT $SERVER

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=$NAME" \
  -addext "subjectAltName=DNS:$NAME" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

rm -f "$rep"/quic-server.jsonl "$rep"/quic-client.jsonl
ip netns exec $S "$work/quicpeer" server "$SERVER:443" "$work/cert.pem" "$work/key.pem" "$rep/quic-server.jsonl" \
  > "$work/server.out" 2>&1 &
pids+=($!)
ip netns exec $C tcpdump -i of-rq-c -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
pids+=($!)
sleep 1

ip netns exec $C "$work/quicpeer" client "https://$SERVER" $NAME 262144 "$rep/quic-client.jsonl" v1
sleep 0.5
ip netns exec $C "$work/quicpeer" client "https://$SERVER" $NAME 65536 "$rep/quic-client.jsonl" v2
sleep 1

kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
echo "record-quic.sh: wrote $out ($(stat -c %s "$out") bytes)"
cat "$rep/quic-client.jsonl" "$rep/quic-server.jsonl"
