#!/usr/bin/env bash
# Records pcaps/outflow-dnstunnel.pcap: real DNS tunnels and heavy
# ordinary DNS beside them, across a veth pair between two network
# namespaces. In the server's namespace iodined is the authoritative
# server of t.tunnel-lab.test and dns2tcpd of t.d2t-lab.test, each on an
# address of its own, and dnsmasq answers a zone of ordinary and CDN-like
# names on a third. In the client's namespace the iodine client tunnels
# 300 KiB of random data (socat across the tunnel's addresses), dns2tcpc
# carries another 300 KiB, and dig asks dnsmasq thousands of times: the
# near miss. `outflow live --on-host` runs in the client's namespace and
# writes the processes it attributed from /proc to
# outflow-dnstunnel.events.jsonl, the recording's host events. What the
# programs reported goes to reported/dnstunnel-*.
#
# Run as root, by hand: sudo bash pcaps/record-dnstunnel.sh
# Needs (Debian): iodine dns2tcp dnsmasq-base bind9-dnsutils socat tcpdump iproute2 ethtool python3, the
# tun module (/dev/net/tun), and Go (builds outflow). Only the namespaces' addresses are ever contacted.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=of-dns-client S=of-dns-server
CLIENT=10.77.1.2 IODINED=198.51.100.53 DNS2TCPD=198.51.100.54 DNSMASQ=198.51.100.55
TUN_NET=10.53.0.1/27 TUN_SERVER=10.53.0.1
out=$here/outflow-dnstunnel.pcap events=$here/outflow-dnstunnel.events.jsonl rep=$here/reported
begin $C $S

need tcpdump iodine iodined dns2tcpc dns2tcpd dnsmasq dig socat python3 ip ethtool go
[ -c /dev/net/tun ] || modprobe tun
(cd .. && go build -o "$work/outflow" ./cmd/outflow)

two_hosts $C $S of-dns-c of-dns-s $CLIENT $IODINED
for a in $DNS2TCPD $DNSMASQ; do
  ip -n $S addr add "$a/32" dev of-dns-s
  ip -n $C route add "$a/32" dev of-dns-c
done

# Data to tunnel, and the near miss's zone: 400 ordinary names and 300
# CDN-like ones (a d and 13 random base32 characters, as CloudFront's
# distribution names are), with the lookups dig will make.
head -c 307200 /dev/urandom > "$work/iodine-300k.bin"
head -c 307200 /dev/urandom > "$work/dns2tcp-300k.bin"
python3 - "$work" <<'PY'
import random, sys
w = sys.argv[1]
rnd = random.Random(15)
b32 = "abcdefghijklmnopqrstuvwxyz234567"
ordinary = [f"host-{i:03d}.office.ordinary-corp.test" for i in range(400)]
cdn = ["d" + "".join(rnd.choice(b32) for _ in range(13)) + ".cdn.edge-cdn.test" for _ in range(300)]
with open(f"{w}/zone.hosts", "w") as f:
    for i, n in enumerate(ordinary + cdn):
        f.write(f"192.0.2.{1 + i % 250} {n}\n")
lookups = ordinary * 5 + cdn * 3
rnd.shuffle(lookups)
with open(f"{w}/lookups.txt", "w") as f:
    for n in lookups:
        f.write(f"{n} A\n")
PY

rm -f "$out" "$events" "$rep"/dnstunnel-*
# Servers. iodined: authoritative for t.tunnel-lab.test, tunnel network
# 10.53.0.0/27, in the foreground. dns2tcpd: its resource "sink" is a
# socat on the server's loopback that counts what arrives.
ip netns exec $S iodined -f -c -P outflow-lab -l $IODINED -p 53 $TUN_NET t.tunnel-lab.test > "$work/iodined.out" 2>&1 &
pids+=($!)
# socat binds the tunnel's server address: wait for iodined's tun device.
for _ in $(seq 50); do ip -n $S -4 addr show | grep -q "inet $TUN_SERVER/" && break; sleep 0.1; done
ip -n $S -4 addr show | grep -q "inet $TUN_SERVER/" || { cat "$work/iodined.out" >&2; exit 1; }
ip netns exec $S socat -u TCP-LISTEN:9001,bind=$TUN_SERVER,reuseaddr,fork OPEN:"$work/iodine-received.bin",creat,append &
pids+=($!)
ip netns exec $S socat -u TCP-LISTEN:9002,bind=127.0.0.1,reuseaddr OPEN:"$work/dns2tcp-received.bin",creat,append &
pids+=($!)
cat > "$work/dns2tcpd.conf" <<CONF
listen = $DNS2TCPD
port = 53
user = nobody
chroot = /
domain = t.d2t-lab.test
resources = sink:127.0.0.1:9002
CONF
ip netns exec $S dns2tcpd -F -d 1 -f "$work/dns2tcpd.conf" > "$work/dns2tcpd.out" 2>&1 &
pids+=($!)
ip netns exec $S dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$work/zone.hosts" \
  --listen-address=$DNSMASQ --bind-interfaces --port=53 --cache-size=0 --log-queries --log-facility="$work/dnsmasq.log" \
  --pid-file="$work/dnsmasq.pid" --user=root &
pids+=($!)
sleep 1

ip netns exec $C tcpdump -i of-dns-c -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
pids+=($!)
tcpdump_pid=$!
ip netns exec $C "$work/outflow" live --on-host -i of-dns-c --flows "$work/live-flows.jsonl" --host-events-out "$events" \
  > "$work/live.out" 2>&1 &
pids+=($!)
live_pid=$!
for _ in $(seq 50); do grep -q capturing "$work/live.out" 2>/dev/null && break; sleep 0.1; done
sleep 1

# 1. iodine: raw mode off (-r), so every byte goes in DNS messages, as it
#    would through a resolver; the tunnel's client address comes from
#    iodined. socat sends the data across the tunnel.
ip netns exec $C iodine -f -r -P outflow-lab $IODINED t.tunnel-lab.test > "$work/iodine.out" 2>&1 &
pids+=($!)
iodine_pid=$!
for _ in $(seq 100); do grep -q "Connection setup complete" "$work/iodine.out" 2>/dev/null && break; sleep 0.2; done
grep -q "Connection setup complete" "$work/iodine.out" || { cat "$work/iodine.out" >&2; exit 1; }
ip netns exec $C timeout 300 socat -u FILE:"$work/iodine-300k.bin" TCP:$TUN_SERVER:9001
sleep 2
kill $iodine_pid 2>/dev/null || true
wait $iodine_pid 2>/dev/null || true
# 2. dns2tcp: the client listens on its loopback, socat sends through it.
ip netns exec $C dns2tcpc -z t.d2t-lab.test -r sink -l 9003 -d 1 $DNS2TCPD > "$work/dns2tcpc.out" 2>&1 &
pids+=($!)
d2t_pid=$!
sleep 1
ip netns exec $C timeout 300 socat -u FILE:"$work/dns2tcp-300k.bin" TCP:127.0.0.1:9003 || true
sleep 3
kill $d2t_pid 2>/dev/null || true
wait $d2t_pid 2>/dev/null || true
# 3. The near miss: dig reads its lookups from a file, one process.
ip netns exec $C dig @$DNSMASQ +tries=1 +time=2 +noall +answer -f "$work/lookups.txt" > "$work/dig.out" 2>&1 || true
sleep 2

kill -INT $live_pid
wait $live_pid || true
kill $tcpdump_pid 2>/dev/null || true
sleep 0.5

# What the programs reported.
cp "$work/iodine.out" "$rep/dnstunnel-iodine.txt"
cp "$work/iodined.out" "$rep/dnstunnel-iodined.txt"
cp "$work/dns2tcpc.out" "$rep/dnstunnel-dns2tcpc.txt"
cp "$work/dns2tcpd.out" "$rep/dnstunnel-dns2tcpd.txt"
cp "$work/live.out" "$rep/dnstunnel-live-summary.txt"
{
  echo "iodine_sent_bytes $(wc -c < "$work/iodine-300k.bin")"
  echo "iodine_received_bytes $(wc -c < "$work/iodine-received.bin" 2>/dev/null || echo 0)"
  echo "dns2tcp_sent_bytes $(wc -c < "$work/dns2tcp-300k.bin")"
  echo "dns2tcp_received_bytes $(wc -c < "$work/dns2tcp-received.bin" 2>/dev/null || echo 0)"
  echo "dig_lookups $(wc -l < "$work/lookups.txt")"
  echo "dig_answers $(awk '$4 == "A"' "$work/dig.out" | wc -l)"
  echo "dig_unique_names $(cut -d' ' -f1 "$work/lookups.txt" | sort -u | wc -l)"
  echo "dnsmasq_queries_logged $(grep -c 'query\[A\]' "$work/dnsmasq.log" || true)"
} > "$rep/dnstunnel-counts.txt"
ls -l "$out" "$events"
cat "$rep/dnstunnel-counts.txt"
echo "recorded $out and $events; program reports in $rep"
