#!/usr/bin/env bash
# Builds outflow as one fully static executable, for a FROM scratch image or
# a host without libpcap:  scripts/build-static.sh [OUTPUT]  (default
# ./outflow-static). As root it installs what it needs from Debian (gcc,
# libc6-dev, pkg-config, libpcap-dev, libdbus-1-dev), as scripts/deps.sh
# does; otherwise it names the packages and stops.
#
# Why each piece:
#   - libpcap is linked from libpcap.a: github.com/dreadl0ck/ja3 imports
#     gopacket/pcap, and sensor/capture compiles tcpdump filters with
#     pcap_compile. Debian's libpcap is built with D-Bus capture, so
#     libpcap.a needs libdbus-1.a (`pkg-config --static --libs libpcap`).
#   - libdbus-1.a in turn names libsystemd, which Debian ships only as a
#     shared library. libdbus calls it for one thing: taking sockets that
#     systemd passed to a D-Bus *server* (sd_listen_fds, sd_is_socket).
#     Outflow is never a D-Bus server, so a two-function stand-in compiled
#     here answers "no sockets were passed" instead of libsystemd.
#   - Tags netgo and osusergo: Go's resolver and user lookups are pure Go,
#     so no Go code calls glibc's NSS (getaddrinfo, getpwuid_r). The linker
#     still warns about the NSS functions that libpcap and libdbus name;
#     deploy/container/README.md says when they are reached and what they
#     can do in a static binary.
#   - -trimpath, and the module version, commit and "modified" flag stamped
#     by go build from git as in a normal build (outflow --version), so the
#     builder needs the .git directory beside the sources.
set -euo pipefail

out=${1:-./outflow-static}
case $out in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
cd "$(dirname "$0")/.."

# What is missing: a static archive is present when gcc resolves its name
# to a path (gcc -print-file-name echoes a name it cannot find).
archive() { [ "$(gcc -print-file-name="$1")" != "$1" ]; }
need=()
if command -v gcc >/dev/null 2>&1; then
  archive libc.a || need+=(libc6-dev)
  archive libpcap.a || need+=(libpcap-dev)
  archive libdbus-1.a || need+=(libdbus-1-dev)
else
  need+=(gcc libc6-dev libpcap-dev libdbus-1-dev)
fi
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "build-static.sh: missing Debian packages ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  echo "build-static.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# libpcap's own static dependencies, less libpcap itself (gopacket names
# it first) and libsystemd (the stand-in below).
libs=()
for l in $(pkg-config --static --libs-only-l libpcap); do
  case $l in
    -lpcap | -lsystemd) ;;
    *) libs+=("$l") ;;
  esac
done

gcc -O2 -g0 -Wall -Werror -c -x c -o "$tmp/sd-daemon-stub.o" - <<'EOF'
/* Stand-ins for libsystemd's socket-activation calls, the only ones
   libdbus makes (for a D-Bus server started by systemd). */
int sd_listen_fds(int unset_environment) {
  (void)unset_environment;
  return 0; /* no sockets were passed */
}
int sd_is_socket(int fd, int family, int type, int listening) {
  (void)fd; (void)family; (void)type; (void)listening;
  return 0; /* not such a socket */
}
EOF
ar rcD "$tmp/libsd-daemon-stub.a" "$tmp/sd-daemon-stub.o"

# The external linker's warnings about NSS functions in libpcap and libdbus
# are expected (see above): shown only when the build fails. gcc finds the
# stand-in through LIBRARY_PATH, so no temporary path enters the link flags
# and the same sources give the same binary.
if ! LIBRARY_PATH="$tmp${LIBRARY_PATH:+:$LIBRARY_PATH}" CGO_ENABLED=1 go build -trimpath -tags 'netgo osusergo' \
  -ldflags "-linkmode external -extldflags '-static ${libs[*]} -lsd-daemon-stub'" \
  -o "$out" ./cmd/outflow 2>"$tmp/build.log"; then
  cat "$tmp/build.log" >&2
  exit 1
fi
grep -v -e "in statically linked applications requires at runtime the shared libraries" \
  -e "): in function \`" -e "^# github.com/outflow-sensor/outflow/cmd/outflow$" "$tmp/build.log" >&2 || true

# A static executable has no program interpreter.
if readelf -lW "$out" | grep -q INTERP; then
  echo "build-static.sh: $out is not static: it names a program interpreter" >&2
  exit 1
fi
echo "build-static.sh: wrote $out ($("$out" --version))" >&2
