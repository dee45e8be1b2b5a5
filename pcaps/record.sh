#!/usr/bin/env bash
# Records pcaps/outflow-demo.pcap from real programs: curl, wget, python3,
# openssl and socat, talking across a veth pair between two network
# namespaces. What the programs reported goes to pcaps/reported/.
#
# Run as root, by hand: sudo bash pcaps/record.sh
# Needs (Debian): tcpdump curl wget openssl socat python3 iproute2 ethtool.
# Only the two namespaces' addresses are ever contacted.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=of-rec-client S=of-rec-server
CLIENT=10.77.0.2 SERVER=198.51.100.10 # an internal host and a public-looking one (TEST-NET-2)
NAME=files.example-storage.test
out=$here/outflow-demo.pcap rep=$here/reported
begin $C $S

need tcpdump curl wget openssl socat python3 ip ethtool

two_hosts $C $S of-rec-c of-rec-s $CLIENT $SERVER
# The client resolves through the server's DNS (ip netns exec bind-mounts this).
mkdir -p /etc/netns/$C
echo "nameserver $SERVER" > /etc/netns/$C/resolv.conf
printf '127.0.0.1 localhost\n' > /etc/netns/$C/hosts

# Content: a web page, a 1 MiB file, upload bodies of random, gzip'd and
# plain text data, and a text to encrypt for the raw channel.
mkdir -p "$work/www" "$work/tls"
python3 - "$work" <<'PY'
import os, random, sys, gzip
w = sys.argv[1]
rnd = random.Random(1)
words = "the quick brown fox jumps over a lazy dog while quarterly report figures load".split()
text = "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(20000)).encode()
open(f"{w}/www/index.html", "wb").write(b"<html><body>" + text[:4000] + b"</body></html>\n")
open(f"{w}/www/small.txt", "wb").write(text[:2000])
open(f"{w}/www/file-1m.bin", "wb").write(os.urandom(1 << 20))
open(f"{w}/upload.bin", "wb").write(os.urandom(3 << 20))
open(f"{w}/upload-tls.bin", "wb").write(os.urandom(2 << 20))
open(f"{w}/report.txt", "wb").write(text[:400000])
open(f"{w}/report.txt.gz", "wb").write(gzip.compress(text[:1500000], 9))
open(f"{w}/secret.txt", "wb").write(text[:300000])
PY
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$NAME" -addext "subjectAltName=DNS:$NAME" \
  -keyout "$work/tls/server.key" -out "$work/tls/server.crt" >/dev/null 2>&1

# Only this script's reports: the other recordings keep theirs here too.
rm -f "$out" "$rep"/curl-*.json "$rep"/wget-*.log "$rep"/openssl-enc-bytes.txt "$rep"/servers.jsonl \
  "$rep"/socat.log "$rep"/tshark-conv.txt
mkdir -p "$rep"
ip netns exec $S python3 "$here/tools/servers.py" $SERVER "$work/www" "$work/tls" "$rep/servers.jsonl" > "$work/servers.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$work/servers.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/servers.out" || { cat "$work/servers.out" >&2; exit 1; }

ip netns exec $C tcpdump -i of-rec-c -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
pids+=($!)
sleep 1

c() { ip netns exec $C timeout 60 "$@"; }
curlj() { # name, then curl arguments: keep curl's own report of each transfer
  local name=$1; shift
  c curl -sS -o /dev/null --cacert "$work/tls/server.crt" -w '%{json}\n' "$@" > "$rep/curl-$name.json"
  sleep 0.5
}

curlj get-page "http://$NAME/index.html"
curlj get-small "http://$NAME/small.txt"
curlj get-1m "http://$NAME/file-1m.bin"
c wget -q -O /dev/null -S "http://$NAME/small.txt" 2> "$rep/wget-get-small.log"; sleep 0.5
curlj https-get-1m "https://$NAME/file-1m.bin"
curlj upload-random -X POST --data-binary "@$work/upload.bin" -H 'Content-Type: application/octet-stream' "http://$NAME/upload"
curlj upload-gzip -X POST --data-binary "@$work/report.txt.gz" -H 'Content-Type: application/gzip' "http://$NAME/upload"
curlj upload-text -X PUT --data-binary "@$work/report.txt" -H 'Content-Type: text/plain' "http://$NAME/report.txt"
curlj https-upload-random -X POST --data-binary "@$work/upload-tls.bin" "https://$NAME/upload"
# A cipher stream with no handshake on a port of its own.
openssl enc -aes-256-cbc -pbkdf2 -pass pass:outflow -in "$work/secret.txt" -out "$work/secret.enc"
wc -c < "$work/secret.enc" > "$rep/openssl-enc-bytes.txt"
c socat -u "OPEN:$work/secret.enc" "TCP:$SERVER:9443" 2> "$rep/socat.log"
sleep 1

kill "${pids[1]}" 2>/dev/null || true
sleep 0.5
ls -l "$out"
# An independent tool's view of the same capture.
tshark -r "$out" -q -z conv,tcp -z conv,udp > "$rep/tshark-conv.txt" 2>/dev/null || true
echo "recorded $out; program reports in $rep"
