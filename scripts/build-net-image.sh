#!/usr/bin/env bash
# Builds assessq-net-test:1, the image of the egress container tests
# (tests/gateway/egress_container_test.cc), with no registry: a root
# filesystem assembled from this host's /usr/bin/curl and /usr/bin/python3
# (with every shared library ldd lists, and the part of the python standard
# library that urllib, ssl, json and socket need), a CA bundle holding only
# the test CA, /etc/passwd with the agent user 10001, then `docker import`.
#   scripts/build-net-image.sh [--remove]
# The test CA (ca.pem, ca.key) the tests sign their servers' certificates
# with lives in $ASSESSQ_NET_CA_DIR (default /var/tmp/assessq-net-test-ca):
# one per machine, made once and reused, because the image tag is one per
# machine too (every build dir's tests must agree with the image). The image
# records the CA's sha256 in ENV ASSESSQ_NET_CA and is rebuilt only when the
# CA or this script changed. Installs curl and python3 with apt-get if
# missing. Needs a running dockerd (scripts/start-dockerd.sh).
set -euo pipefail
TAG=assessq-net-test:1
ca_dir=${ASSESSQ_NET_CA_DIR:-/var/tmp/assessq-net-test-ca}
if [ "${1:-}" = "--remove" ]; then
  docker image rm -f "$TAG" >/dev/null 2>&1 || true
  exit 0
fi
die() { echo "build-net-image: $*" >&2; exit 1; }
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "dockerd does not answer (scripts/start-dockerd.sh)"

need=()
[ -x /usr/bin/curl ] || need+=(curl)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  echo "build-net-image: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

mkdir -p "$ca_dir"
chmod 700 "$ca_dir"
# One builder at a time (several build dirs may run their fixtures at once).
exec 9>"$ca_dir/.lock"
flock -w 300 9 || die "another build-net-image.sh holds $ca_dir/.lock"
if [ ! -s "$ca_dir/ca.pem" ] || [ ! -s "$ca_dir/ca.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=assessq egress test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem" 2>/dev/null || die "cannot make the test CA"
  chmod 600 "$ca_dir/ca.key"
fi

py=$(readlink -f /usr/bin/python3)                 # /usr/bin/python3.11
pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
stdlib=/usr/lib/python$pyver
[ -d "$stdlib" ] || die "$stdlib is missing"
ca_sha=$(sha256sum "$ca_dir/ca.pem" | cut -c1-64)
hash=$( { cat "$0" "$ca_dir/ca.pem"; ls -l /usr/bin/curl "$py"; } | sha256sum | cut -c1-16)
current=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$TAG" 2>/dev/null \
          | sed -n 's/^ASSESSQ_NET_IMAGE=//p' || true)
if [ "$current" = "$hash" ]; then
  echo "build-net-image: $TAG is up to date"
  exit 0
fi

root=$(mktemp -d /tmp/aq-netimg-XXXXXX)
trap 'rm -rf "$root"' EXIT
copy() {  # copies files (resolving symlinks) to the same path in the rootfs
  for f in "$@"; do
    [ -e "$f" ] || continue
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
  done
}
libs_of() {  # the shared libraries (and loader) ldd lists for the given files
  ldd "$@" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/.*ld-linux/{print $1}' | sort -u
}

# Programs.
copy /usr/bin/curl "$py"
ln -s "$(basename "$py")" "$root/usr/bin/python3"
# The standard library, without what a probe never imports.
mkdir -p "$root$stdlib"
tar -C "$stdlib" -c \
  --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
  --exclude=./ensurepip --exclude=./lib2to3 --exclude=./pydoc_data --exclude=./distutils \
  --exclude=./unittest --exclude=./site-packages --exclude=./dist-packages \
  --exclude='./config-*' --exclude=./sqlite3 --exclude=./curses --exclude=./dbm \
  --exclude=./venv --exclude=./xmlrpc --exclude=./msilib --exclude=./wsgiref \
  --exclude='*/__pycache__/*.opt-*.pyc' . | tar -C "$root$stdlib" -x
dynload=$(ls -d "$stdlib"/lib-dynload)
# Shared libraries of the programs and of the python extension modules.
mapfile -t libs < <(libs_of /usr/bin/curl "$py" "$dynload"/*.so)
copy "${libs[@]}"
[ -e /lib64/ld-linux-x86-64.so.2 ] && copy /lib64/ld-linux-x86-64.so.2

# Trust: only the test CA, where curl and OpenSSL (python's ssl) look.
mkdir -p "$root/etc/ssl/certs" "$root/usr/lib/ssl"
cp "$ca_dir/ca.pem" "$root/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"
ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"

# Users, and the usual mount points.
mkdir -p "$root/etc" "$root/tmp" "$root/home/agent" "$root/input" "$root/output" "$root/run" \
         "$root/proc" "$root/sys" "$root/dev" "$root/bin"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nagent:x:10001:10001:agent:/home/agent:/usr/sbin/nologin\n' \
  > "$root/etc/passwd"
printf 'root:x:0:\nagent:x:10001:\n' > "$root/etc/group"
printf 'hosts: files\n' > "$root/etc/nsswitch.conf"
chown 10001:10001 "$root/home/agent"

tar -C "$root" --numeric-owner -c . | docker import \
  --change 'USER 10001:10001' \
  --change 'WORKDIR /home/agent' \
  --change 'ENV PATH=/usr/bin:/bin' \
  --change "ENV ASSESSQ_NET_IMAGE=$hash" \
  --change "ENV ASSESSQ_NET_CA=$ca_sha" \
  --change 'ENTRYPOINT ["/usr/bin/python3"]' \
  - "$TAG" >/dev/null || die "docker import failed"
size=$(docker image inspect -f '{{.Size}}' "$TAG")
echo "build-net-image: built $TAG ($((size / 1048576)) MiB)"
# Smoke test: both programs start in the image, with no network.
docker run --rm --network none --entrypoint /usr/bin/python3 "$TAG" \
  -c 'import ssl, json, socket, urllib.request; print("python ok", ssl.OPENSSL_VERSION)' \
  || die "python3 does not run in $TAG"
docker run --rm --network none --entrypoint /usr/bin/curl "$TAG" --version >/dev/null \
  || die "curl does not run in $TAG"
