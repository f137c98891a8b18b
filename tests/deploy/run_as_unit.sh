#!/usr/bin/env bash
# run_as_unit.sh UNIT -- COMMAND...: runs COMMAND as systemd 252 would run the
# unit's ExecStart, as far as mounts, file modes, capabilities and limits go,
# for tests on a host where systemd is not PID 1 (this one: a VM whose init
# is not systemd). Each [Service] setting of UNIT is applied, or named below
# as not reproduced, or refused: an unknown setting fails, so a new line in
# the unit must be classified here before the unit test passes again.
#   UMask=                       umask
#   LimitNOFILE= LimitCORE=      prlimit
#   NoNewPrivileges=yes          setpriv --no-new-privs
#   CapabilityBoundingSet=       setpriv --bounding-set
#   ProtectHostname=yes          a new UTS namespace (unshare --uts)
#   any setting that gives the service a mount namespace (systemd 252's
#   exec_needs_mount_namespace: ProtectSystem=, PrivateTmp=, ...): a new
#   mount namespace whose mounts are made slave, then shared, as systemd
#   does: the host, and so dockerd, never sees a mount made inside.
#   Not reproduced (they filter workerd's own system calls or devices and
#   change no mount or file mode): ProtectClock=, RestrictRealtime=,
#   RestrictSUIDSGID=, LockPersonality=, RestrictAddressFamilies=,
#   SystemCallArchitectures=, SystemCallFilter=, SystemCallErrorNumber=,
#   RestrictNamespaces=, MemoryDenyWriteExecute=.
#   Manager-side settings (Type=, ExecStart=, Restart=, directories and
#   credentials the test gives workerd itself) are ignored.
set -euo pipefail
die() { echo "run_as_unit: $*" >&2; exit 70; }
unit=${1:?UNIT}
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || die "no command"
[ -r "$unit" ] || die "cannot read $unit"

umask_v=0022 nofile="" core="" nnp=0 caps="" mountns=0 uts=0 section="" cont=0
while IFS= read -r line || [ -n "$line" ]; do
  if [ "$cont" = 1 ]; then [[ "$line" == *\\ ]] || cont=0; continue; fi
  case "$line" in ''|'#'*|';'*) continue ;; '['*) section=$line; continue ;; esac
  [[ "$line" == *\\ ]] && cont=1
  [ "$section" = "[Service]" ] || continue
  key=${line%%=*} val=${line#*=}
  case "$key" in
    Type|ExecStart|ExecStartPre|ExecStartPost|ExecReload|ExecStop|KillSignal|KillMode|\
    TimeoutStopSec|TimeoutStartSec|Restart|RestartSec|StateDirectory|StateDirectoryMode|\
    RuntimeDirectory|RuntimeDirectoryMode|LoadCredential|SetCredential|User|Group|\
    DynamicUser|AmbientCapabilities) ;;
    UMask) umask_v=$val ;;
    LimitNOFILE) nofile=$val ;;
    LimitCORE) core=$val ;;
    NoNewPrivileges) [ "$val" = yes ] && nnp=1 ;;
    CapabilityBoundingSet)
      caps="-all"
      for c in $val; do c=${c#CAP_}; caps="$caps,+${c,,}"; done ;;
    ProtectHostname) [ "$val" = yes ] && uts=1 ;;
    ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateMounts|PrivateIPC|ProtectProc|\
    ProcSubset|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|\
    ProtectControlGroups|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ExecPaths|NoExecPaths|\
    BindPaths|BindReadOnlyPaths|TemporaryFileSystem|RootDirectory|RootImage|MountImages|\
    ExtensionImages|ExtensionDirectories|LogNamespace|MountFlags|PrivateNetwork)
      case "$val" in no|false|off|0|default|all|shared) ;; *) mountns=1 ;; esac ;;
    ProtectClock|RestrictRealtime|RestrictSUIDSGID|LockPersonality|RestrictAddressFamilies|\
    SystemCallArchitectures|SystemCallFilter|SystemCallErrorNumber|RestrictNamespaces|\
    MemoryDenyWriteExecute) ;;
    *) die "$unit: [Service] $key= is not classified in $0" ;;
  esac
done < "$unit"

cmd=("$@")
sp=()
[ "$nnp" = 1 ] && sp+=(--no-new-privs)
[ -n "$caps" ] && sp+=("--bounding-set=$caps")
[ ${#sp[@]} -gt 0 ] && cmd=(setpriv "${sp[@]}" -- "${cmd[@]}")
# Limits first, as systemd sets them: raising one needs CAP_SYS_RESOURCE,
# which the bounding set above drops.
if [ -n "$nofile$core" ]; then
  pl=(prlimit)
  if [ -n "$nofile" ]; then
    # Raising the hard limit needs CAP_SYS_RESOURCE, which a test sandbox
    # may lack: keep what can be had and say so.
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$nofile" -gt "$hard" ] && ! prlimit --nofile="$nofile" true 2>/dev/null; then
      echo "run_as_unit: LimitNOFILE=$nofile above this sandbox's hard limit $hard; using $hard" >&2
      nofile=$hard
    fi
    pl+=("--nofile=$nofile")
  fi
  [ -n "$core" ] && pl+=("--core=$core")
  cmd=("${pl[@]}" -- "${cmd[@]}")
fi
ns=()
[ "$mountns" = 1 ] && ns+=(--mount --propagation slave)
[ "$uts" = 1 ] && ns+=(--uts)
# The last step before the command: the umask, and (in a mount namespace)
# systemd's final MountFlags=shared, which does not reconnect to the host.
inner='umask "$1"; shift; if [ "$1" = 1 ]; then mount --make-rshared /; fi; shift; exec "$@"'
if [ ${#ns[@]} -gt 0 ]; then
  exec unshare "${ns[@]}" -- sh -c "$inner" sh "$umask_v" "$mountns" "${cmd[@]}"
fi
exec sh -c "$inner" sh "$umask_v" 0 "${cmd[@]}"
