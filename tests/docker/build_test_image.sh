#!/usr/bin/env bash
# Builds the image the docker tests run, assessq-test-busybox:1, without any
# registry: a FROM scratch image holding Debian's statically linked busybox
# (package busybox-static, installed here when missing and we are root) with
# its applets linked in /bin, /sbin, /usr/bin, /usr/sbin, a world-writable
# /tmp and an /etc/passwd naming nobody (65534). Idempotent: an image already
# present is kept. `--remove` deletes the image instead (the ctest fixture's
# clean-up). Uses the docker CLI; only test set-up does, never the client.
set -euo pipefail

IMAGE="${ASSESSQ_TEST_IMAGE:-assessq-test-busybox:1}"
export DOCKER_BUILDKIT=0  # the legacy builder: no buildx plugin is needed

die() { echo "build_test_image: $*" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || die "the docker CLI is missing (run scripts/start-dockerd.sh)"
docker version >/dev/null 2>&1 \
  || die "the Docker daemon does not answer (start it with scripts/start-dockerd.sh, as root)"

if [ "${1:-}" = "--remove" ]; then
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    docker image rm -f "$IMAGE" >/dev/null
    echo "build_test_image: removed $IMAGE"
  fi
  exit 0
fi

# Two test processes may call this at once: build under a lock.
exec 9>"/tmp/assessq-build-test-image.lock"
if command -v flock >/dev/null 2>&1; then flock -w 120 9 || die "timed out waiting for the build lock"; fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi

is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }
BUSYBOX=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if is_static "$candidate"; then BUSYBOX="$candidate"; break; fi
done
if [ -z "$BUSYBOX" ]; then
  [ "$(id -u)" -eq 0 ] || die "no static busybox; run as root or: apt-get install busybox-static"
  echo "build_test_image: installing busybox-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends busybox-static >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends busybox-static >/dev/null; } \
    || die "apt-get install busybox-static failed"
  is_static /bin/busybox || die "/bin/busybox is not a static executable"
  BUSYBOX=/bin/busybox
fi

ctx="$(mktemp -d /tmp/assessq-test-image.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
cp "$BUSYBOX" "$ctx/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/group"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY passwd group /etc/
RUN ["/bin/busybox", "mkdir", "-p", "/sbin", "/usr/bin", "/usr/sbin", "/tmp", "/root"]
RUN ["/bin/busybox", "--install", "-s"]
# A tmpfs mounted on /tmp takes this mode (Docker copies the image's /tmp up).
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin
LABEL assessq.test="1"
CMD ["sh"]
DOCKERFILE

echo "build_test_image: building $IMAGE"
docker build -q --label assessq.test=1 -t "$IMAGE" "$ctx" >/dev/null 2>"$ctx/build.err" \
  || { cat "$ctx/build.err" >&2; die "docker build failed"; }
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE missing after the build"
echo "build_test_image: built $IMAGE"
