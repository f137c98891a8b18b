#!/usr/bin/env bash
# Builds the image of the real-agent end-to-end test (tests/agent_real/): the
# agent image of deploy/agent/claude/Dockerfile as far as this machine can
# build it, with no pulled base image. The same Claude Code (the native
# linux-x64 build pinned in deploy/agent/claude/claude-code.lock, fetched with
# `npm pack` and checked by the same install-claude-code.sh), the same
# entrypoint.sh and the same managed-settings.json, at the same paths; the
# one difference is Python: Debian's python3 (+ python3-requests) without the
# PyPI libraries (datasets, huggingface_hub) that the production image adds
# from PyPI, which this machine cannot reach.
#
#   scripts/build-claude-image.sh              build unless the tag exists
#   scripts/build-claude-image.sh --print-tag  print the tag this script builds
#   scripts/build-claude-image.sh --remove     remove every tag it ever built
#
# Two layers, each cached by a hash of what goes into it:
#  - the base, assessq-claude-base:<hash of the base recipe below>: a minimal
#    Debian 12 made with debootstrap (security updates included), python3,
#    python3-requests, ca-certificates, the agent user (10001) and the job's
#    directories, `docker import`ed. About 2 minutes, once.
#  - the image, assessq-claude-min:cc<VERSION>-<hash of this script, the lock,
#    the install script, the entrypoint and the settings>: the base plus
#    those files (`docker build`, no RUN step). About 20 s; the npm tarball
#    is kept in /var/cache/assessq and checked against the lock every time.
# Needs root (debootstrap, chroot, mount), a running dockerd
# (scripts/start-dockerd.sh), debootstrap and npm (scripts/install-deps.sh),
# and the Debian mirror and the npm registry (nothing else). The base's root
# filesystem is built in a tmpfs in a private mount namespace (dpkg's fsyncs
# on a disk cost minutes) and vanishes with this script, however it ends.
set -euo pipefail

SUITE=bookworm
BASE_PACKAGES="python3 python3-requests ca-certificates"
MIRROR=${ASSESSQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${ASSESSQ_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
REPO=assessq-claude-min
BASE_REPO=assessq-claude-base
CACHE=${ASSESSQ_CLAUDE_CACHE:-/var/cache/assessq}

here=$(cd "$(dirname "$0")" && pwd)
script="$here/$(basename "$0")"
agent="$here/../deploy/agent/claude"
die() { echo "build-claude-image: $*" >&2; exit 1; }
for f in claude-code.lock install-claude-code.sh entrypoint.sh managed-settings.json Dockerfile; do
  [ -r "$agent/$f" ] || die "$agent/$f is missing"
done
# shellcheck source=../deploy/agent/claude/claude-code.lock
. "$agent/claude-code.lock"

# The base: everything but the agent's own files. Its tag hashes this
# function's text and the package list, so editing either rebuilds it.
build_base_rootfs() {
  local root=$1 log=$2
  debootstrap --variant=minbase --components=main "$SUITE" "$root" "$MIRROR" >"$log" 2>&1 \
    || fail "debootstrap failed"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  step "apt: upgrade, $BASE_PACKAGES"
  # shellcheck disable=SC2086
  { in_root apt-get update -q \
    && in_root apt-get -y -q upgrade \
    && in_root apt-get install -y -q --no-install-recommends $BASE_PACKAGES \
    && in_root apt-get clean; } >>"$log" 2>&1 || fail "apt-get failed"
  in_root useradd --uid 10001 --user-group --home-dir /home/agent --no-create-home \
    --shell /bin/bash agent >>"$log" 2>&1 || fail "useradd failed"
  install -d -o 10001 -g 10001 -m 0700 "$root/home/agent"
  install -d -m 0755 "$root/input" "$root/output" "$root/run/assessq"
  rm -rf "$root/tmp/"* "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
         "$root/var/cache/debconf/"*-old "$root/var/log/"*.log "$root/var/log/apt/"* \
         "$root/usr/share/doc/"* "$root/usr/share/man/"* "$root/usr/share/info/"*
  : >"$root/etc/resolv.conf"  # Docker provides its own (jobs have no network)
  echo agent >"$root/etc/hostname"
}

base_hash=$( { echo "$SUITE $BASE_PACKAGES"; declare -f build_base_rootfs; } | sha256sum | cut -c1-12)
BASE_TAG="$BASE_REPO:$SUITE-$base_hash"
hash=$( { echo "$BASE_TAG"; cat "$script" "$agent/claude-code.lock" "$agent/install-claude-code.sh" \
          "$agent/entrypoint.sh" "$agent/managed-settings.json"; } | sha256sum | cut -c1-12)
TAG="$REPO:cc$CLAUDE_CODE_VERSION-$hash"

case "${1:-}" in
  --print-tag) echo "$TAG"; exit 0 ;;
  --remove)
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | xargs -r docker image rm -f >/dev/null
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO" | xargs -r docker image rm -f >/dev/null
    exit 0 ;;
  "") ;;
  *) die "usage: $0 [--print-tag|--remove]" ;;
esac

start=$(date +%s)
step() { echo "build-claude-image: $* ($(( $(date +%s) - start )) s)"; }

# The production recipe must install the same files at the same paths.
for line in 'COPY claude-code.lock install-claude-code.sh /build/' \
            'COPY --from=claude-code /build/claude /usr/local/bin/claude' \
            'COPY entrypoint.sh /usr/local/bin/assessq-agent' \
            'COPY managed-settings.json /etc/claude-code/managed-settings.json'; do
  grep -qxF "$line" "$agent/Dockerfile" \
    || die "deploy/agent/claude/Dockerfile no longer says '$line': keep this script in step with it"
done

# The base is built in a private mount namespace: the tmpfs (and whatever
# debootstrap mounts below it) goes away with the process.
if [ -n "${AQ_CLAUDE_BASE_NS:-}" ]; then
  work=$(mktemp -d /tmp/aq-claudeimg-XXXXXX)
  cleanup() {
    umount -R "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  mount -t tmpfs -o size=4g,mode=0755 aq-claudeimg "$work" || die "cannot mount a tmpfs on $work"
  root="$work/rootfs"
  log="$work/build.log"
  fail() {
    echo "build-claude-image: $*; the last lines of the log:" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
  }
  # Runs a command in the root filesystem, with a clean environment (only a
  # proxy setting of the host's, if any, is kept).
  in_root() {
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
               LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
    local v
    for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
      [ -n "${!v:-}" ] && env+=("$v=${!v}")
    done
    env -i "${env[@]}" chroot "$root" "$@"
  }
  step "base: debootstrap $SUITE (minbase) from $MIRROR"
  build_base_rootfs "$root" "$log"
  step "base: docker import $BASE_TAG"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change "LABEL org.assessq.base-packages=\"$BASE_PACKAGES\"" - "$BASE_TAG" >/dev/null \
    || die "docker import failed"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
  || die "dockerd does not answer (scripts/start-dockerd.sh)"
if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "build-claude-image: $TAG is up to date"
  exit 0
fi
# One builder at a time (several build dirs may run their fixtures at once).
exec 9>/var/tmp/assessq-claude-image.lock
flock -w 900 9 || die "another build-claude-image.sh holds /var/tmp/assessq-claude-image.lock"
if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "build-claude-image: $TAG is up to date (built meanwhile)"
  exit 0
fi

if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  step "base $BASE_TAG is up to date"
else
  command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh)"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  AQ_CLAUDE_BASE_NS=1 unshare --mount --propagation private "$script" || die "building the base failed"
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO" | grep -vxF "$BASE_TAG" \
    | xargs -r docker image rm -f >/dev/null 2>&1 || true
fi

# Claude Code: the npm tarball, kept between builds, checked every time.
mkdir -p "$CACHE"
tgz="$CACHE/claude-code-linux-x64-$CLAUDE_CODE_VERSION.tgz"
if [ ! -s "$tgz" ] || ! sha256sum "$tgz" | grep -q "^$CLAUDE_CODE_TGZ_SHA256 "; then
  command -v npm >/dev/null || die "npm is missing (scripts/install-deps.sh)"
  step "npm pack $CLAUDE_CODE_PACKAGE@$CLAUDE_CODE_VERSION"
  packdir=$(mktemp -d)
  (cd "$packdir" && npm pack --silent --no-update-notifier "$CLAUDE_CODE_PACKAGE@$CLAUDE_CODE_VERSION" >/dev/null) \
    || { rm -rf "$packdir"; die "npm pack $CLAUDE_CODE_PACKAGE@$CLAUDE_CODE_VERSION failed"; }
  mv "$packdir"/*.tgz "$tgz.part" && rm -rf "$packdir"
  mv "$tgz.part" "$tgz"
fi
ctx=$(mktemp -d /tmp/aq-claudectx-XXXXXX)
trap 'rm -rf "$ctx"' EXIT
sh "$agent/install-claude-code.sh" "$tgz" "$ctx/claude" >/dev/null || die "the Claude Code tarball fails its check"
install -m 0755 "$agent/entrypoint.sh" "$ctx/entrypoint.sh"
install -m 0644 "$agent/managed-settings.json" "$ctx/managed-settings.json"
# The same paths, user, working directory and entrypoint as the Dockerfile.
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_TAG
COPY claude /usr/local/bin/claude
COPY entrypoint.sh /usr/local/bin/assessq-agent
COPY managed-settings.json /etc/claude-code/managed-settings.json
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 \\
    HF_HOME=/tmp/hf \\
    ASSESSQ_CLAUDE_CODE_VERSION=$CLAUDE_CODE_VERSION
LABEL org.assessq.claude-code=$CLAUDE_CODE_VERSION
USER 10001:10001
WORKDIR /home/agent
ENTRYPOINT ["/usr/local/bin/assessq-agent"]
EOF
step "docker build $TAG"
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$ctx" >"$ctx/build.log" 2>&1 \
  || { cat "$ctx/build.log" >&2; die "docker build failed"; }

# Smoke test, hardened as a job is: read-only root, tmpfs home, no network.
smoke=$(docker run --rm --network none --read-only --cap-drop ALL \
          --security-opt no-new-privileges --user 10001:10001 \
          --tmpfs /tmp:rw,exec,nosuid,nodev,size=64m --tmpfs /home/agent:rw,nosuid,nodev,size=64m,uid=10001,gid=10001,mode=0700 \
          --entrypoint /bin/sh "$TAG" -c \
          'claude --version && python3 -c "import ssl, json, urllib.request, requests; import sys; print(\"python\", sys.version.split()[0])"' 2>&1) || {
  docker image rm -f "$TAG" >/dev/null 2>&1 || true
  die "claude or python3 does not start in $TAG: $smoke"
}
# Older builds of this script are of no further use.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -vxF "$TAG" \
  | xargs -r docker image rm -f >/dev/null 2>&1 || true
size=$(docker image inspect -f '{{.Size}}' "$TAG")
step "built $TAG ($((size / 1048576)) MiB): $(echo "$smoke" | tr '\n' ' ')"
