#!/usr/bin/env bash
# Builds the image of the real-agent end-to-end test (tests/agent_real/):
# Debian's own nodejs and the real Claude Code from npm, with no pulled base
# image. A minimal Debian 12 root filesystem is made with debootstrap, Debian's
# nodejs and npm are installed in it with apt (security updates included),
# `npm install -g` installs the pinned @anthropic-ai/claude-code inside it, npm
# is purged again (the agent never needs it), the agent user (10001) and the
# entrypoint of deploy/agent/claude are added, and the tree is `docker import`ed.
#
#   scripts/build-claude-image.sh              build unless the tag exists
#   scripts/build-claude-image.sh --print-tag  print the tag this script builds
#   scripts/build-claude-image.sh --remove     remove every tag it ever built
#
# The tag is assessq-claude-min:cc<VERSION>-<hash of this script and the
# entrypoint>: a changed script or entrypoint is a new tag, an existing tag is
# not rebuilt. Needs root (debootstrap, chroot, mount), a running dockerd
# (scripts/start-dockerd.sh), debootstrap (scripts/install-deps.sh), and the
# Debian mirror and the npm registry (nothing else). The root filesystem is
# built in a tmpfs in a private mount namespace (dpkg's fsyncs on a disk cost
# minutes) and vanishes with this script, however it ends. About 2 minutes.
#
# Why Claude Code 2.1.112: Debian 12's nodejs is 18.20. The newest versions
# need node >= 22 (engines, from 2.1.198 on), and every version from 2.1.113 on
# is no longer a node program at all: its `claude` is a native executable from
# a per-platform optional package (bin/claude.exe), so "Debian's nodejs" would
# not run it. 2.1.112 is the newest release whose `claude` is cli.js on
# node >= 18; it runs on Debian's node 18 (checked below).
set -euo pipefail

CLAUDE_CODE_VERSION=2.1.112
SUITE=bookworm
MIRROR=${ASSESSQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${ASSESSQ_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
REPO=assessq-claude-min

here=$(cd "$(dirname "$0")" && pwd)
script="$here/$(basename "$0")"
entrypoint="$here/../deploy/agent/claude/entrypoint.sh"
die() { echo "build-claude-image: $*" >&2; exit 1; }
[ -r "$entrypoint" ] || die "$entrypoint is missing"
hash=$( { echo "claude-code@$CLAUDE_CODE_VERSION $SUITE"; cat "$script" "$entrypoint"; } \
        | sha256sum | cut -c1-12)
TAG="$REPO:cc$CLAUDE_CODE_VERSION-$hash"

case "${1:-}" in
  --print-tag) echo "$TAG"; exit 0 ;;
  --remove)
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | xargs -r docker image rm -f >/dev/null
    exit 0 ;;
  "") ;;
  *) die "usage: $0 [--print-tag|--remove]" ;;
esac

# The build proper runs in a private mount namespace: the tmpfs (and whatever
# debootstrap mounts below it) goes away with the process.
if [ -z "${AQ_CLAUDE_IMAGE_NS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "dockerd does not answer (scripts/start-dockerd.sh)"
  if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-claude-image: $TAG is up to date"
    exit 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh)"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  # One builder at a time (several build dirs may run their fixtures at once).
  exec 9>/var/tmp/assessq-claude-image.lock
  flock -w 900 9 || die "another build-claude-image.sh holds /var/tmp/assessq-claude-image.lock"
  if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-claude-image: $TAG is up to date (built meanwhile)"
    exit 0
  fi
  AQ_CLAUDE_IMAGE_NS=1 exec unshare --mount --propagation private "$script"
fi

start=$(date +%s)
work=$(mktemp -d /tmp/aq-claudeimg-XXXXXX)
cleanup() {
  umount -R "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mount -t tmpfs -o size=4g,mode=0755 aq-claudeimg "$work" || die "cannot mount a tmpfs on $work"
root="$work/rootfs"
log="$work/build.log"
step() { echo "build-claude-image: $* ($(( $(date +%s) - start )) s)"; }
fail() {
  echo "build-claude-image: $*; the last lines of the log:" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}

step "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase --components=main "$SUITE" "$root" "$MIRROR" >"$log" 2>&1 \
  || fail "debootstrap failed"

# Runs a command in the root filesystem, with a clean environment (only a
# proxy setting of the host's, if any, is kept).
in_root() {
  local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/build-home
             LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
  local v
  for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
    [ -n "${!v:-}" ] && env+=("$v=${!v}")
  done
  env -i "${env[@]}" chroot "$root" "$@"
}

cp /etc/resolv.conf "$root/etc/resolv.conf"
cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
step "apt: upgrade, nodejs, npm"
{ in_root apt-get update -q \
  && in_root apt-get -y -q upgrade \
  && in_root apt-get install -y -q --no-install-recommends nodejs npm ca-certificates; } >>"$log" 2>&1 \
  || fail "apt-get failed"

# npm trusts what this host trusts for the download (a network may
# intercept TLS with its own CA); the bundle is removed again below.
step "npm install -g @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
mkdir -p "$root/tmp/build-home"
cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/build-ca.crt"
in_root npm install -g --cafile /tmp/build-ca.crt --cache /tmp/build-home/npm-cache \
  --no-audit --no-fund --no-update-notifier \
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >>"$log" 2>&1 || fail "npm install failed"
got=$(in_root /usr/local/bin/claude --version 2>>"$log") || fail "claude --version failed"
case "$got" in
  "$CLAUDE_CODE_VERSION "*) ;;
  *) fail "claude --version says '$got', wanted $CLAUDE_CODE_VERSION" ;;
esac
node_version=$(in_root node --version)
step "claude $got on node $node_version; trimming"

# npm is not needed at run time: purge it and what only it needed.
{ in_root apt-get purge -y -q npm && in_root apt-get autoremove --purge -y -q \
  && in_root apt-get clean; } >>"$log" 2>&1 || fail "apt-get purge npm failed"
in_root node -e 'process.exit(0)' || fail "node does not run after the purge"
in_root useradd --uid 10001 --user-group --home-dir /home/agent --no-create-home \
  --shell /bin/bash agent >>"$log" 2>&1 || fail "useradd failed"
install -d -o 10001 -g 10001 -m 0700 "$root/home/agent"
install -d -m 0755 "$root/input" "$root/output" "$root/run/assessq"
install -m 0755 "$entrypoint" "$root/usr/local/bin/assessq-agent"
rm -rf "$root/tmp/"* "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
       "$root/var/cache/debconf/"*-old "$root/var/log/"*.log "$root/var/log/apt/"* \
       "$root/usr/share/doc/"* "$root/usr/share/man/"* "$root/usr/share/info/"* \
       "$root/root/.npm" "$root/root/.cache"
: >"$root/etc/resolv.conf"  # Docker provides its own (jobs have no network)
echo agent >"$root/etc/hostname"

step "docker import $TAG"
tar -C "$root" --numeric-owner -c . | docker import \
  --change 'USER 10001:10001' \
  --change 'WORKDIR /home/agent' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV DISABLE_TELEMETRY=1' \
  --change 'ENV DISABLE_ERROR_REPORTING=1' \
  --change 'ENV DISABLE_AUTOUPDATER=1' \
  --change 'ENV DISABLE_BUG_COMMAND=1' \
  --change 'ENV CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1' \
  --change "ENV ASSESSQ_CLAUDE_CODE_VERSION=$CLAUDE_CODE_VERSION" \
  --change "LABEL org.assessq.claude-code=$CLAUDE_CODE_VERSION org.assessq.node=$node_version" \
  --change 'ENTRYPOINT ["/usr/local/bin/assessq-agent"]' \
  - "$TAG" >/dev/null || die "docker import failed"

# Smoke test, hardened as a job is: read-only root, tmpfs home, no network.
smoke=$(docker run --rm --network none --read-only --cap-drop ALL \
          --security-opt no-new-privileges --user 10001:10001 \
          --tmpfs /tmp:rw,exec,nosuid,nodev,size=64m --tmpfs /home/agent:rw,nosuid,nodev,size=64m,uid=10001,gid=10001,mode=0700 \
          --entrypoint /usr/local/bin/claude "$TAG" --version 2>&1) || {
  docker image rm -f "$TAG" >/dev/null 2>&1 || true
  die "claude does not start in $TAG: $smoke"
}
# Older builds of this script are of no further use.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -vxF "$TAG" \
  | xargs -r docker image rm -f >/dev/null 2>&1 || true
size=$(docker image inspect -f '{{.Size}}' "$TAG")
step "built $TAG ($((size / 1048576)) MiB; claude $smoke, node $node_version)"
