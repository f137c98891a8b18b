#!/usr/bin/env bash
# ctest "deploy": checks what deploy/ ships against the built daemons.
#  1. `systemd-analyze verify` on deploy/systemd/coordinatord.service and
#     workerd.service, copied to a temp dir with ExecStart pointing at the
#     built binaries (verify checks the executable exists). Any line it prints
#     about either unit (unknown key, bad value, missing executable or
#     dependency) fails the test, not only a non-zero exit: verify reports
#     most mistakes as warnings. docker.service, which workerd requires, is a
#     stub beside them so the check does not depend on this host's Docker.
#  2. Each unit starts its daemon with --config /etc/assessq/NAME.toml.
#  3. The example config files deploy/config/*.toml parse: every key is one
#     the daemon knows (an unknown key is an error), checked by running
#     `coordinatord --config ... token create` and `workerd --config ...` with
#     a token file that does not exist (the first thing it trips over).
# Fails, never skips, when systemd-analyze is missing (Debian package
# "systemd"; scripts/install-deps.sh installs it).
#   verify_units.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=${1:?BIN_DIR}
src=${2:?SOURCE_DIR}
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null 2>&1 ||
  fail "systemd-analyze is missing (install the Debian package systemd: scripts/install-deps.sh)"
tmp=$(mktemp -d /tmp/aqdeploy-XXXXXX) || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT

for u in coordinatord workerd; do
  [ -x "$bin/$u" ] || fail "$bin/$u is not built"
  unit="$src/deploy/systemd/$u.service"
  [ -f "$unit" ] || fail "$unit is missing"
  sed -E "s#^ExecStart=/usr/local/bin/$u( |\$)#ExecStart=$bin/$u\\1#" "$unit" > "$tmp/$u.service"
  grep -q "^ExecStart=$bin/$u" "$tmp/$u.service" ||
    fail "$unit: ExecStart does not start /usr/local/bin/$u"
  grep -Eq "^ExecStart=.* --config /etc/assessq/$u\.toml( |\$)" "$unit" ||
    fail "$unit: ExecStart does not pass --config /etc/assessq/$u.toml"
done
printf '[Unit]\nDescription=stand-in for the Docker daemon (verify only)\n[Service]\nExecStart=/bin/true\n' \
  > "$tmp/docker.service"

out=$(cd "$tmp" && systemd-analyze verify "$tmp/coordinatord.service" "$tmp/workerd.service" 2>&1)
rc=$?
echo "systemd-analyze verify: exit $rc"
[ -n "$out" ] && printf '%s\n' "$out"
[ "$rc" -eq 0 ] || fail "systemd-analyze verify exited $rc"
if printf '%s\n' "$out" | grep -E "(coordinatord|workerd|docker)\.service" >/dev/null; then
  fail "systemd-analyze verify reported problems with the units (above)"
fi

# The example configs: every key known to the daemon.
r=$("$bin/coordinatord" --config "$src/deploy/config/coordinatord.toml" --db "$tmp/c.db" \
      token create --role operator --name deploy-test --out "$tmp/op.token" 2>&1)
[ $? -eq 0 ] || fail "deploy/config/coordinatord.toml does not parse: $r"
[ -s "$tmp/op.token" ] || fail "coordinatord --config ... token create wrote no token"
r=$("$bin/workerd" --config "$src/deploy/config/workerd.toml" --token-file "$tmp/no-such.token" 2>&1)
[ $? -ne 0 ] || fail "workerd started with a missing token file?"
printf '%s\n' "$r" | grep -q "no-such.token" ||
  fail "deploy/config/workerd.toml does not parse (expected the missing-token error): $r"
echo "PASS: units verify; example configs parse"
