#!/usr/bin/env bash
# Brings up a local Docker daemon for assessq's worker and its docker test
# suite: installs Debian's docker.io when dockerd is missing, starts dockerd in
# the background (log in /tmp/dockerd.log) when /var/run/docker.sock does not
# answer, and waits up to 60 s for the socket to answer the Engine API. It is
# idempotent: with a daemon already answering it only checks and exits 0. It
# must run as root. There is no registry access here, so nothing is pulled:
# images are built locally (see tests/docker/build_test_image.sh).
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=/tmp/dockerd.log
WAIT_SECS=60

die() { echo "start-dockerd: $*" >&2; exit 1; }

# The socket answers when GET /_ping returns "OK".
answers() {
  [ -S "$SOCK" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    [ "$(curl -fsS --max-time 5 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null)" = "OK" ]
  else
    docker -H "unix://$SOCK" version >/dev/null 2>&1
  fi
}

# True if /proc/PID exists and is not a zombie.
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# True if a live process named dockerd exists; no procps needed.
dockerd_running() {
  local dir
  for dir in /proc/[0-9]*; do
    [ "$(cat "$dir/comm" 2>/dev/null)" = dockerd ] || continue
    alive "${dir#/proc/}" && return 0
  done
  return 1
}

if answers; then
  echo "start-dockerd: dockerd already answers on $SOCK"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root to install or start dockerd"

export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  echo "start-dockerd: installing ${need[*]}"
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${need[@]}" \
    || die "apt-get install ${need[*]} failed"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io"

started_pid=""
starts=0
start_dockerd() {
  starts=$((starts + 1))
  # Files left behind by a killed daemon would make dockerd refuse to start
  # (a killed dockerd may linger as a zombie, which dockerd takes as running).
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ -n "$pid" ] && ! alive "$pid"; then rm -f /var/run/docker.pid; fi
  rm -f "$SOCK"
  # containerd: dockerd starts its own managed containerd when none runs.
  echo "start-dockerd: starting dockerd (log: $LOG)"
  # In a session of its own: whoever ran this script (a CI step, a shell
  # job) may end by killing its process group, which must not take the
  # daemon (and every job container) with it.
  setsid nohup dockerd --host="unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
  started_pid=$!
  disown || true
}

if dockerd_running; then
  echo "start-dockerd: dockerd is running but $SOCK does not answer yet; waiting"
else
  start_dockerd
fi

for _ in $(seq 1 "$WAIT_SECS"); do
  if answers; then
    echo "start-dockerd: dockerd answers on $SOCK"
    exit 0
  fi
  if [ -n "$started_pid" ]; then
    if ! alive "$started_pid"; then
      # E.g. a killed daemon's containerd still shutting down: retry, twice.
      echo "start-dockerd: dockerd exited (start $starts); see $LOG" >&2
      [ "$starts" -lt 3 ] || break
      sleep 3
      start_dockerd
    fi
  elif ! dockerd_running; then
    start_dockerd  # the one we waited for was exiting
  fi
  sleep 1
done

echo "start-dockerd: last lines of $LOG:" >&2
tail -n 30 "$LOG" >&2 2>/dev/null || true
die "dockerd did not answer on $SOCK within ${WAIT_SECS}s (see $LOG)"
