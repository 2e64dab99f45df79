// The Linux/macOS installer served at /install.sh. Kept as text here (not a
// file read at run time: Pages Functions have no file system); the console's
// origin replaces @@CAISEY_SERVER@@. String.raw keeps backslashes as written,
// and the script uses neither ${...} nor backquotes, so it needs no escaping
// (tests/unit/installers.test.ts checks both). Service definitions live inside
// it: see docs/decisions/0013-runtime-install-and-service.md.
export const INSTALL_SH = String.raw`#!/bin/sh
# Caisey endpoint runtime installer for Linux (systemd) and macOS (launchd),
# served by the Caisey console. Run it as root:
#   curl -fsSL @@CAISEY_SERVER@@/install.sh | sudo sh -s -- --token cae_...
# Uninstall (keeps the identity and journal unless --purge):
#   curl -fsSL @@CAISEY_SERVER@@/install.sh | sudo sh -s -- --uninstall [--purge]
#
# Options:
#   --token TOKEN     enrollment token from the client's page in the console
#                     (not needed to reinstall or upgrade an enrolled machine)
#   --force           enroll again although this machine is enrolled (it becomes a new endpoint)
#   --hostname NAME   the name the console shows instead of this machine's hostname
#   --proxy URL       HTTP(S) proxy for the runtime's connections (saved in config.json)
#   --no-proxy HOSTS  hosts that bypass that proxy (NO_PROXY syntax)
#   --version V       install runtime version V instead of the latest
#   --server URL      use another console than the one this script came from
#   --uninstall       stop and remove the service and the executable
#   --purge           with --uninstall: also delete the state (identity, journal, outbox)
#   --root DIR        stage every file under DIR and leave the service manager alone
#                     (packaging and tests; the service files still name the real paths)
#   --dry-run         download and verify the executable, print the plan, change nothing
set -eu

SERVER='@@CAISEY_SERVER@@'
SERVICE=caisey-runtime
LAUNCHD_LABEL=com.caisey.runtime

say() { printf 'caisey: %s\n' "$*"; }
die() { printf 'caisey: error: %s\n' "$*" >&2; exit 1; }
need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}

TOKEN=
FORCE=0
NAME=
PROXY=
NO_PROXY_HOSTS=
VERSION=
ACTION=install
PURGE=0
ROOT=
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --token) need_value "$@"; TOKEN=$2; shift 2 ;;
    --force) FORCE=1; shift ;;
    --hostname) need_value "$@"; NAME=$2; shift 2 ;;
    --proxy) need_value "$@"; PROXY=$2; shift 2 ;;
    --no-proxy) need_value "$@"; NO_PROXY_HOSTS=$2; shift 2 ;;
    --version) need_value "$@"; VERSION=$2; shift 2 ;;
    --server) need_value "$@"; SERVER=$2; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --root) need_value "$@"; ROOT=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help)
      say "options: --token TOKEN [--force] [--hostname NAME] [--proxy URL] [--no-proxy HOSTS] [--version V] [--server URL]"
      say "         --uninstall [--purge]; --root DIR; --dry-run (each is explained at the top of $SERVER/install.sh)"
      exit 0 ;;
    *) die "unknown option $1 (see the comments at the top of this script)" ;;
  esac
done
SERVER=$(printf '%s' "$SERVER" | sed 's:/*$::')
case "$SERVER" in
  https://*|http://*) ;;
  *) die "--server must be an http(s) URL, got '$SERVER'" ;;
esac
case "$VERSION" in
  ''|[0-9]*) ;;
  *) die "--version must look like 1.2.3, got '$VERSION'" ;;
esac
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT=$(cd "$ROOT" && pwd)
fi
if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  die "run this as root, e.g. curl -fsSL $SERVER/install.sh | sudo sh -s -- --token TOKEN"
fi

case "$(uname -s)" in
  Linux) OS=linux ;;
  Darwin) OS=darwin ;;
  *) die "this installer is for Linux and macOS (found $(uname -s)); on Windows use $SERVER/install.ps1" ;;
esac
case "$(uname -m)" in
  x86_64|amd64) ARCH=x64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  *) die "no runtime build for the $(uname -m) architecture" ;;
esac
# A shell under Rosetta reports x86_64 on Apple silicon; install the native build.
if [ "$OS" = darwin ] && [ "$ARCH" = x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
  ARCH=arm64
fi
PLATFORM="$OS-$ARCH"

# The service files always name these real paths; --root only moves where files are written.
BIN_PATH=/usr/local/bin/caisey-runtime
if [ "$OS" = linux ]; then
  STATE_PATH=/var/lib/caisey-runtime
  SERVICE_FILE_PATH=/etc/systemd/system/caisey-runtime.service
else
  STATE_PATH='/Library/Application Support/Caisey'
  SERVICE_FILE_PATH=/Library/LaunchDaemons/com.caisey.runtime.plist
  LOG_PATH=/Library/Logs/Caisey
fi
BIN="$ROOT$BIN_PATH"
STATE="$ROOT$STATE_PATH"
SERVICE_FILE="$ROOT$SERVICE_FILE_PATH"

# Runs a service-manager command, or only says it when staging under --root.
manage() {
  if [ -n "$ROOT" ]; then
    say "skipped (--root): $*"
  else
    "$@"
  fi
}

service_running() {
  if [ "$OS" = linux ]; then
    systemctl is-active --quiet "$SERVICE"
  else
    launchctl print "system/$LAUNCHD_LABEL" >/dev/null 2>&1
  fi
}

stop_and_remove_service() {
  if [ "$OS" = linux ]; then
    if [ -n "$ROOT" ] || [ -d /run/systemd/system ]; then
      manage systemctl disable --now "$SERVICE" 2>/dev/null || true
    fi
    rm -f "$SERVICE_FILE"
    if [ -n "$ROOT" ] || [ -d /run/systemd/system ]; then
      manage systemctl daemon-reload
      manage systemctl reset-failed "$SERVICE" 2>/dev/null || true
    fi
  else
    manage launchctl bootout "system/$LAUNCHD_LABEL" 2>/dev/null || true
    rm -f "$SERVICE_FILE"
  fi
}

if [ "$ACTION" = uninstall ]; then
  if [ "$DRY_RUN" = 1 ]; then
    say "would stop and remove the service ($SERVICE_FILE) and $BIN"
    if [ "$PURGE" = 1 ]; then say "would delete $STATE"; else say "would keep $STATE"; fi
    exit 0
  fi
  stop_and_remove_service
  rm -f "$BIN"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE"
    if [ "$OS" = darwin ]; then rm -rf "$ROOT$LOG_PATH"; fi
    say "removed the service, $BIN and $STATE"
  else
    say "removed the service and $BIN; kept $STATE (identity, journal, undelivered results): add --purge to delete it"
  fi
  say "decommission the endpoint in the console to retire it there"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# Downloads $1 to $2 and writes the response headers to $3.
download() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 --retry-connrefused -D "$3" -o "$2" "$1" || return 1
  elif command -v wget >/dev/null 2>&1; then
    wget -q -S -O "$2" "$1" 2>"$3" || return 1
  else
    die "neither curl nor wget is installed"
  fi
}

# The value of response header $2 in header dump $1 (the last response, after redirects).
header() {
  tr -d '\r' <"$1" | grep -i "^ *$2:" | tail -n 1 | sed 's/^[^:]*: *//; s/ *$//'
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  else
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  fi
}

if [ -n "$PROXY" ]; then
  https_proxy=$PROXY
  http_proxy=$PROXY
  export https_proxy http_proxy
fi
if [ -n "$NO_PROXY_HOSTS" ]; then
  no_proxy=$NO_PROXY_HOSTS
  export no_proxy
fi
URL="$SERVER/runtime/download/$PLATFORM"
if [ -n "$VERSION" ]; then URL="$URL?version=$VERSION"; fi
say "downloading the $PLATFORM runtime from $URL"
if ! download "$URL" "$WORK/caisey-runtime" "$WORK/headers"; then
  die "the download failed; $URL answered: $(head -c 500 "$WORK/caisey-runtime" 2>/dev/null || true)"
fi
EXPECTED=$(header "$WORK/headers" x-caisey-sha256 | tr 'A-F' 'a-f')
GOT_VERSION=$(header "$WORK/headers" x-caisey-version)
if ! printf '%s' "$EXPECTED" | grep -Eq '^[0-9a-f]{64}$'; then
  die "the console did not say the executable's SHA-256 (no X-Caisey-Sha256 header); refusing to install it"
fi
ACTUAL=$(sha256_of "$WORK/caisey-runtime")
if [ "$ACTUAL" != "$EXPECTED" ]; then
  die "SHA-256 mismatch: the console published $EXPECTED but the download is $ACTUAL; nothing was installed"
fi
say "verified SHA-256 $ACTUAL (runtime $GOT_VERSION)"
chmod 0755 "$WORK/caisey-runtime"
if ! RAN=$("$WORK/caisey-runtime" --version 2>&1); then
  die "the downloaded runtime does not run on this machine: $RAN"
fi

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: would install $BIN (runtime $RAN)"
  if [ -f "$STATE/identity.json" ] && [ "$FORCE" = 0 ]; then
    say "dry run: would keep the enrollment in $STATE"
  else
    say "dry run: would enroll with $SERVER into $STATE (mode 0700)"
  fi
  say "dry run: would install and start the service $SERVICE_FILE"
  exit 0
fi

mkdir -p "$(dirname "$BIN")"
cp "$WORK/caisey-runtime" "$BIN.new"
chmod 0755 "$BIN.new"
mv -f "$BIN.new" "$BIN"
say "installed $BIN"

mkdir -p "$STATE"
chmod 0700 "$STATE"
if [ -z "$ROOT" ]; then chown 0:0 "$STATE"; fi

if [ -f "$STATE/identity.json" ] && [ "$FORCE" = 0 ]; then
  say "already enrolled ($STATE/identity.json): keeping that identity; add --force with a new token to enroll as a new endpoint"
else
  [ -n "$TOKEN" ] || die "--token is required: create an enrollment token on the client's page in the console"
  set -- enroll --server "$SERVER" --token "$TOKEN" --state-dir "$STATE"
  if [ "$FORCE" = 1 ]; then set -- "$@" --force; fi
  if [ -n "$NAME" ]; then set -- "$@" --hostname "$NAME"; fi
  if [ -n "$PROXY" ]; then set -- "$@" --proxy "$PROXY"; fi
  if [ -n "$NO_PROXY_HOSTS" ]; then set -- "$@" --no-proxy "$NO_PROXY_HOSTS"; fi
  "$BIN" "$@" || die "enrollment failed (see above); the executable is installed, nothing else changed"
fi

write_systemd_unit() {
  cat >"$1" <<'UNIT'
# Caisey endpoint runtime, installed by the console's install.sh.
# Runs as root on purpose: technicians run administrative commands through it.
[Unit]
Description=Caisey endpoint runtime (remote troubleshooting)
Wants=network-online.target
After=network-online.target
# Never stop restarting: the runtime must come back after any crash.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart=/usr/local/bin/caisey-runtime run --state-dir /var/lib/caisey-runtime
Environment=CAISEY_RUNTIME_SERVICE=1
Restart=always
RestartSec=5
# Exit status 2: the console refused this runtime's credential (revoked). Stay
# stopped instead of knocking every few seconds; a rotation's command restarts it.
RestartPreventExitStatus=2
# SIGTERM to the runtime only: it records the commands it interrupts in its
# journal, stops their process trees and flushes its outbox itself; whatever
# is left after TimeoutStopSec is killed.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=30
UMask=0077
StateDirectory=caisey-runtime
StateDirectoryMode=0700
# No ProtectSystem/ProtectHome/NoNewPrivileges/PrivateTmp: commands run
# through the runtime are the administrator's own and must see the real system.

[Install]
WantedBy=multi-user.target
UNIT
}

write_launchd_plist() {
  cat >"$1" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>com.caisey.runtime</string>
  <key>ProgramArguments</key>
  <array>
    <string>/usr/local/bin/caisey-runtime</string>
    <string>run</string>
    <string>--state-dir</string>
    <string>/Library/Application Support/Caisey</string>
  </array>
  <key>EnvironmentVariables</key>
  <dict>
    <key>CAISEY_RUNTIME_SERVICE</key>
    <string>1</string>
  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
  <key>ThrottleInterval</key>
  <integer>10</integer>
  <key>ExitTimeOut</key>
  <integer>30</integer>
  <key>Umask</key>
  <integer>63</integer>
  <key>StandardOutPath</key>
  <string>/Library/Logs/Caisey/runtime.log</string>
  <key>StandardErrorPath</key>
  <string>/Library/Logs/Caisey/runtime.log</string>
</dict>
</plist>
PLIST
}

mkdir -p "$(dirname "$SERVICE_FILE")"
if [ "$OS" = linux ]; then
  if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
    die "systemd is not running here, so no service was installed. The runtime is installed and enrolled: start it with $BIN_PATH run --state-dir $STATE_PATH"
  fi
  write_systemd_unit "$SERVICE_FILE.new"
  chmod 0644 "$SERVICE_FILE.new"
  mv -f "$SERVICE_FILE.new" "$SERVICE_FILE"
  say "wrote $SERVICE_FILE"
  manage systemctl daemon-reload
  manage systemctl enable "$SERVICE"
  # restart, not start: a reinstall must run the new executable.
  manage systemctl restart "$SERVICE"
else
  mkdir -p "$ROOT$LOG_PATH"
  chmod 0700 "$ROOT$LOG_PATH"
  write_launchd_plist "$SERVICE_FILE.new"
  chmod 0644 "$SERVICE_FILE.new"
  if [ -z "$ROOT" ]; then chown 0:0 "$SERVICE_FILE.new"; fi
  mv -f "$SERVICE_FILE.new" "$SERVICE_FILE"
  say "wrote $SERVICE_FILE"
  manage launchctl bootout "system/$LAUNCHD_LABEL" 2>/dev/null || true
  manage launchctl bootstrap system "$SERVICE_FILE"
  manage launchctl enable "system/$LAUNCHD_LABEL"
  manage launchctl kickstart -k "system/$LAUNCHD_LABEL"
fi

if [ -z "$ROOT" ]; then
  tries=0
  until service_running; do
    tries=$((tries + 1))
    [ "$tries" -lt 20 ] || die "the service did not start; see: $( [ "$OS" = linux ] && echo "journalctl -u $SERVICE" || echo "$LOG_PATH/runtime.log")"
    sleep 1
  done
  say "the runtime service is running; it starts at boot and restarts if it stops"
fi
say "done: this machine appears online in the console within a few seconds ($SERVER)"
`;
