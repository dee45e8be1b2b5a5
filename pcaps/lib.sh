# Sourced by the record-*.sh scripts: what every recording sets up the same
# way. Bash; the caller sets -euo pipefail.

# need TOOL...: stop, naming the first tool missing.
need() {
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$(basename "$0"): $t is missing" >&2; exit 1; }
  done
}

# two_hosts CLIENT_NS SERVER_NS CLIENT_DEV SERVER_DEV CLIENT_ADDR SERVER_ADDR:
# two hosts in network namespaces joined by a veth pair, MTU 1500, with
# segmentation and checksum offloads off so a capture holds wire-sized
# segments with real checksums, each with a /32 route to the other.
two_hosts() {
  local c=$1 s=$2 cdev=$3 sdev=$4 caddr=$5 saddr=$6
  ip netns add "$c"
  ip netns add "$s"
  ip link add "$cdev" type veth peer name "$sdev"
  ip link set "$cdev" netns "$c"
  ip link set "$sdev" netns "$s"
  ip -n "$c" addr add "$caddr/32" dev "$cdev"
  ip -n "$s" addr add "$saddr/32" dev "$sdev"
  local ns dev
  for ns in "$c:$cdev" "$s:$sdev"; do
    dev=${ns#*:} ns=${ns%%:*}
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$dev" mtu 1500 up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  done
  ip -n "$c" route add "$saddr/32" dev "$cdev"
  ip -n "$s" route add "$caddr/32" dev "$sdev"
}

# remove_hosts CLIENT_NS SERVER_NS: undo two_hosts (and the client's
# resolver files, when a script made them).
remove_hosts() {
  ip netns del "$1" 2>/dev/null || true
  ip netns del "$2" 2>/dev/null || true
  rm -rf "/etc/netns/$1"
}

# begin CLIENT_NS SERVER_NS: a fresh work directory ($work), a list for the
# background processes the script starts ($pids), and a trap that, when the
# script exits, stops them, removes the namespaces and the work directory.
begin() {
  C_NS=$1 S_NS=$2
  pids=()
  remove_hosts "$C_NS" "$S_NS" # left over from an interrupted run
  work=$(mktemp -d)
  trap finish EXIT
}

finish() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  remove_hosts "$C_NS" "$S_NS"
  rm -rf "$work"
}
