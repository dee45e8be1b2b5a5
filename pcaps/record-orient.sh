#!/usr/bin/env bash
# Records pcaps/outflow-orient.pcap for the originator rule (issue 12): TCP
# sessions whose client sits on a high port it was told to bind (15001-15007)
# and whose server listens on a port in no list (TLS on 4433, a raw channel
# on 9001), with the server's address the lower of the two, so an exporter
# that orders by address puts the server first. Uploads and downloads both
# ways. What the programs reported goes to reported/orient-*.
#
# Run as root, by hand: sudo bash pcaps/record-orient.sh
# Needs (Debian): tcpdump curl openssl socat python3 iproute2 ethtool
# (tshark for the conversation table, if present).
# Only the two namespaces' addresses are ever contacted.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=oforient-client S=oforient-server
CLIENT=10.77.0.2 SERVER=10.9.0.10 # the client's address is the higher
out=$here/outflow-orient.pcap rep=$here/reported
begin $C $S

need tcpdump curl openssl socat python3 ip ethtool

two_hosts $C $S oforient-c oforient-s $CLIENT $SERVER

# Content: a page and a file to download over TLS, a file to upload over
# TLS, and random bytes for the raw channel each way.
mkdir -p "$work/www"
python3 - "$work" <<'PY'
import os, random, sys
w = sys.argv[1]
rnd = random.Random(12)
words = "the quick brown fox jumps over a lazy dog while quarterly report figures load".split()
text = "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(2000)).encode()
open(f"{w}/www/index.html", "wb").write(b"<html><body>" + text[:20000] + b"</body></html>\n")
open(f"{w}/www/dl-600k.bin", "wb").write(os.urandom(600 << 10))
open(f"{w}/up-tls-400k.bin", "wb").write(os.urandom(400 << 10))
open(f"{w}/up-raw.bin", "wb").write(os.urandom(1700000))
open(f"{w}/dl-raw.bin", "wb").write(os.urandom(600000))
PY
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=$SERVER" \
  -addext "subjectAltName=IP:$SERVER" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

rm -f "$out" "$rep"/orient-*
mkdir -p "$rep"

ip netns exec $C tcpdump -i oforient-c -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
sleep 1

s() { ip netns exec $S timeout 60 "$@"; }
c() { ip netns exec $C timeout 60 "$@"; }
# listening PORT: wait until the server namespace listens on PORT.
listening() {
  for _ in $(seq 100); do
    ip netns exec $S ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "record-orient.sh: nothing listens on $1" >&2
  exit 1
}
# socat's own count: the sum of its "transferred N bytes" lines (-d -d -d).
transferred() { awk '/ transferred [0-9]+ bytes/ { for (i = 1; i < NF; i++) if ($i == "transferred") n += $(i + 1) } END { print n + 0 }' "$1"; }

# TLS downloads: curl from openssl s_server -WWW (HTTP/1.0, the server closes).
(cd "$work/www" && s openssl s_server -accept "$SERVER:4433" -cert "$work/cert.pem" -key "$work/key.pem" \
  -WWW -http_server_binmode -naccept 2 -quiet </dev/null >"$work/s_server-www.out" 2>&1) &
www_pid=$!
pids+=($www_pid)
listening 4433
curlj() { # name, local port, URL
  c curl -sS -o /dev/null --cacert "$work/cert.pem" --local-port "$2" -w '%{json}\n' "$3" > "$rep/orient-curl-$1.json"
  sleep 0.5
}
curlj get-600k 15001 "https://$SERVER:4433/dl-600k.bin"
curlj get-page 15002 "https://$SERVER:4433/index.html"
wait $www_pid

# TLS upload: socat sends a file through TLS to openssl s_server, which
# writes what it receives (-quiet: nothing else) to a file. Its standard
# input must stay open (at end of input it closes the connection): a FIFO
# this script holds open.
mkfifo "$work/hold"
exec 3<>"$work/hold"
s openssl s_server -accept "$SERVER:4433" -cert "$work/cert.pem" -key "$work/key.pem" -naccept 1 -quiet \
  <"$work/hold" >"$work/tls-up-received.bin" 2>"$work/s_server-up.err" &
up_pid=$!
pids+=($up_pid)
listening 4433
c socat -d -d -d -u "OPEN:$work/up-tls-400k.bin" "OPENSSL:$SERVER:4433,sourceport=15003,cafile=$work/cert.pem" \
  2>"$work/socat-tls-up.log"
wait $up_pid
sleep 0.5

# The raw channel on 9001, no handshake of its own: an upload from 15006
# (issue 12's 1.7 MB), then a download to 15007.
s socat -d -d -d -u "TCP-LISTEN:9001,bind=$SERVER,reuseaddr" "OPEN:$work/raw-up-received.bin,creat,trunc" \
  2>"$work/socat-raw-up-server.log" &
srv_pid=$!
pids+=($srv_pid)
listening 9001
c socat -d -d -d -u "OPEN:$work/up-raw.bin" "TCP:$SERVER:9001,sourceport=15006" 2>"$work/socat-raw-up-client.log"
wait $srv_pid
sleep 0.5
s socat -d -d -d -u "OPEN:$work/dl-raw.bin" "TCP-LISTEN:9001,bind=$SERVER,reuseaddr" 2>"$work/socat-raw-down-server.log" &
srv_pid=$!
pids+=($srv_pid)
listening 9001
c socat -d -d -d -u "TCP:$SERVER:9001,sourceport=15007" "OPEN:$work/raw-down-received.bin,creat,trunc" \
  2>"$work/socat-raw-down-client.log"
wait $srv_pid
sleep 1

kill $tcpdump_pid
wait $tcpdump_pid 2>/dev/null || true
cat "$work/tcpdump.out"

# What each program reported, one line per connection. curl: its -w
# '%{json}' (HTTP bytes; TLS records and the handshake come on top). socat:
# the sum of its own "transferred" lines. openssl s_server: the bytes it
# wrote out. cmp checks that what arrived is what was sent.
cmp "$work/up-tls-400k.bin" "$work/tls-up-received.bin"
cmp "$work/up-raw.bin" "$work/raw-up-received.bin"
cmp "$work/dl-raw.bin" "$work/raw-down-received.bin"
python3 - "$rep" "$SERVER" \
  "$(transferred "$work/socat-tls-up.log")" "$(stat -c %s "$work/tls-up-received.bin")" \
  "$(transferred "$work/socat-raw-up-client.log")" "$(transferred "$work/socat-raw-up-server.log")" \
  "$(transferred "$work/socat-raw-down-server.log")" "$(transferred "$work/socat-raw-down-client.log")" <<'PY'
import json, sys
rep, server = sys.argv[1], sys.argv[2]
tls_up_sent, tls_up_recv, up_sent, up_recv, down_sent, down_recv = map(int, sys.argv[3:9])
lines = []
for name in ("get-600k", "get-page"):
    c = json.load(open(f"{rep}/orient-curl-{name}.json"))
    lines.append({"conn": f"tls-{name}", "client": "curl", "server": "openssl s_server -WWW", "tls": True,
                  "client_port": c["local_port"], "server_addr": f"{c['remote_ip']}:{c['remote_port']}",
                  "client_sent": c["size_request"] + c["size_upload"],
                  "client_received": c["size_header"] + c["size_download"], "http_code": c["http_code"],
                  "reported_by": "curl -w %{json}: size_request+size_upload, size_header+size_download"})
lines.append({"conn": "tls-upload-400k", "client": "socat", "server": "openssl s_server", "tls": True,
              "client_port": 15003, "server_addr": f"{server}:4433", "client_sent": tls_up_sent, "client_received": 0,
              "server_received": tls_up_recv,
              "reported_by": "socat -d -d -d transferred lines (client); bytes s_server wrote out (server)"})
lines.append({"conn": "raw-upload", "client": "socat", "server": "socat", "tls": False,
              "client_port": 15006, "server_addr": f"{server}:9001", "client_sent": up_sent, "client_received": 0,
              "server_received": up_recv, "reported_by": "socat -d -d -d transferred lines, each end"})
lines.append({"conn": "raw-download", "client": "socat", "server": "socat", "tls": False,
              "client_port": 15007, "server_addr": f"{server}:9001", "client_sent": 0, "client_received": down_recv,
              "server_sent": down_sent, "reported_by": "socat -d -d -d transferred lines, each end"})
with open(f"{rep}/orient-connections.jsonl", "w") as f:
    for l in lines:
        f.write(json.dumps(l, sort_keys=True) + "\n")
PY
# An independent tool's view of the same capture.
if command -v tshark >/dev/null; then
  tshark -r "$out" -q -z conv,tcp > "$rep/orient-tshark-conv.txt" 2>/dev/null || true
fi
cat "$rep/orient-connections.jsonl"
echo "record-orient.sh: wrote $out ($(stat -c %s "$out") bytes)"
