#!/bin/sh
# Installs the pinned Claude Code (claude-code.lock beside this script) from
# its npm tarball: checks the tarball's sha512 and sha256 and the package's
# name and version, extracts the one executable and checks its sha256, and
# installs it mode 0755 at DEST. Used by the Dockerfile here and by
# scripts/build-claude-image.sh, so both images hold the same bytes.
# Needs only POSIX sh, tar, gzip and coreutils.
#   install-claude-code.sh TARBALL DEST
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/claude-code.lock"
tgz=$1
dest=$2
die() { echo "install-claude-code: $*" >&2; exit 1; }
[ -r "$tgz" ] || die "$tgz is missing"
got=$(sha512sum "$tgz" | cut -d' ' -f1)
[ "$got" = "$CLAUDE_CODE_TGZ_SHA512" ] || die "$tgz: sha512 $got, pinned $CLAUDE_CODE_TGZ_SHA512"
got=$(sha256sum "$tgz" | cut -d' ' -f1)
[ "$got" = "$CLAUDE_CODE_TGZ_SHA256" ] || die "$tgz: sha256 $got, pinned $CLAUDE_CODE_TGZ_SHA256"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tgz" -C "$tmp" package/package.json package/claude || die "$tgz: no package/claude"
grep -q "\"name\": *\"$CLAUDE_CODE_PACKAGE\"" "$tmp/package/package.json" \
  || die "$tgz is not $CLAUDE_CODE_PACKAGE"
grep -q "\"version\": *\"$CLAUDE_CODE_VERSION\"" "$tmp/package/package.json" \
  || die "$tgz is not version $CLAUDE_CODE_VERSION"
got=$(sha256sum "$tmp/package/claude" | cut -d' ' -f1)
[ "$got" = "$CLAUDE_CODE_BIN_SHA256" ] || die "claude: sha256 $got, pinned $CLAUDE_CODE_BIN_SHA256"
install -D -m 0755 "$tmp/package/claude" "$dest"
echo "install-claude-code: $CLAUDE_CODE_PACKAGE@$CLAUDE_CODE_VERSION -> $dest"
