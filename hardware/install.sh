#!/bin/sh
# Installs the eip-edge agent as a systemd service on Raspberry Pi OS (Bookworm) or Debian.
# Run it again at any time: it keeps your config and udev rules and rewrites only what it owns.
# Usage and what it does: sh install.sh --help. The install guide: hardware/README.md.
set -eu

PACKAGE_NAME=eip-market
NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19
SERVICE=eip-edge
SERVICE_USER=eip-edge
CONFIG_DIR=/etc/eip-edge
CONFIG_FILE=$CONFIG_DIR/config.yaml
KEYSTORE_FILE=$CONFIG_DIR/keystore.json
PASSWORD_FILE=$CONFIG_DIR/keystore-password
STATE_DIR=/var/lib/eip-edge
UNIT_FILE=/etc/systemd/system/$SERVICE.service
UDEV_FILE=/etc/udev/rules.d/99-eip-rs485.rules
# The path the shipped unit names; replaced by where npm put the command.
UNIT_DEFAULT_BIN=/usr/bin/eip-edge
# systemd's PATH for system services: node must be found there (eip-edge is "#!/usr/bin/env node").
SYSTEMD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() {
  cat <<EOF
Usage: sudo sh install.sh [--no-start] [PACKAGE]
       sh install.sh --root DIR [PACKAGE]

Installs the eip-edge agent of the EIP utility market as the systemd service eip-edge:
  1. checks it runs as root and that node (20.19 or later) and npm are there;
  2. npm install -g --omit=dev PACKAGE (default: \$EIP_PACKAGE, else $PACKAGE_NAME from the npm
     registry; PACKAGE may be a tarball such as ./eip-market-0.1.0.tgz). Skipped when this
     script runs from the globally installed $PACKAGE_NAME and no PACKAGE is given;
  3. creates the system user $SERVICE_USER (no login, home $STATE_DIR, group dialout);
  4. creates $CONFIG_DIR (root:$SERVICE_USER 0750) and $STATE_DIR, and copies the example
     config to $CONFIG_FILE unless that file exists (it is never overwritten);
  5. installs $UNIT_FILE with the absolute path of eip-edge, and the udev
     rules $UDEV_FILE unless that file exists;
  6. systemctl daemon-reload, udevadm control --reload-rules, udevadm trigger;
  7. enables the service, and (re)starts it only when eip-edge check-config accepts the config
     and the keystore and its password file exist; otherwise prints the next steps.

Options:
  --root DIR   install into the staging directory DIR (tests, packaging): every path is
               prefixed with DIR, nothing is chowned, and npm, useradd, systemctl and udevadm
               are not run but printed. eip-edge is looked up on PATH (or set EIP_EDGE_BIN).
  --no-start   install and enable, but do not start the service.
  -h, --help   this text.

Environment: EIP_PACKAGE (the package to install), EIP_EDGE_BIN (with --root: the eip-edge
path to write into the unit).
EOF
}

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
usage_error() {
  printf 'install.sh: %s (see sh install.sh --help)\n' "$*" >&2
  exit 2
}

ROOT=
START=yes
PACKAGE_ARG=
while [ $# -gt 0 ]; do
  case $1 in
    --root)
      [ $# -ge 2 ] || usage_error "--root needs a directory"
      ROOT=$2
      [ -n "$ROOT" ] || usage_error "--root needs a directory"
      shift 2
      ;;
    --root=*)
      ROOT=${1#--root=}
      [ -n "$ROOT" ] || usage_error "--root needs a directory"
      shift
      ;;
    --no-start)
      START=no
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    --)
      shift
      break
      ;;
    -*) usage_error "unknown option $1" ;;
    *)
      [ -z "$PACKAGE_ARG" ] || usage_error "give one package, not '$PACKAGE_ARG' and '$1'"
      PACKAGE_ARG=$1
      shift
      ;;
  esac
done
if [ $# -gt 0 ]; then
  if [ -n "$PACKAGE_ARG" ] || [ $# -gt 1 ]; then usage_error "give one package"; fi
  PACKAGE_ARG=$1
fi

STAGING=no
if [ -n "$ROOT" ]; then
  STAGING=yes
  mkdir -p -- "$ROOT" || die "cannot create the staging directory $ROOT"
  ROOT=$(cd -- "$ROOT" && pwd -P)
  [ "$ROOT" != / ] || usage_error "--root / is the real system: run without --root instead"
fi

# Runs a command, or with --root prints it, quoted for sh where needed.
run() {
  if [ "$STAGING" = yes ]; then
    printf 'would run:'
    for arg in "$@"; do
      case $arg in
        '' | *[!A-Za-z0-9_./:=@%+,-]*) printf " '%s'" "$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")" ;;
        *) printf ' %s' "$arg" ;;
      esac
    done
    printf '\n'
  else
    "$@"
  fi
}

# The directory of this script, and the package it came in (hardware/..).
SCRIPT_DIR=$(cd -- "$(dirname -- "$0")" && pwd -P)
SOURCE_PACKAGE_DIR=$(dirname -- "$SCRIPT_DIR")

# --- 1. Root, node, npm --------------------------------------------------------------------
if [ "$STAGING" = no ] && [ "$(id -u)" -ne 0 ]; then
  die "run me as root: sudo sh $0 (or use --root DIR to stage an install as any user)"
fi

NODE_BIN=$(command -v node 2>/dev/null) || die "node is not on PATH ($PATH).
  Install Node.js 22 (Debian's nodejs on bookworm is 18, too old): see hardware/raspberry-pi.md.
  Installed it under a directory sudo does not search? Run: sudo env PATH=\"\$PATH\" sh $0"
case $NODE_BIN in
  /*) ;;
  *) die "node resolves to '$NODE_BIN', not a file (an alias?); put a real node on PATH" ;;
esac
NODE_VERSION=$("$NODE_BIN" --version 2>/dev/null) || die "$NODE_BIN --version failed"
node_numbers=${NODE_VERSION#v}
node_major=${node_numbers%%.*}
node_rest=${node_numbers#*.}
node_minor=${node_rest%%.*}
case "$node_major.$node_minor" in
  *[!0-9.]* | .* | *.) die "cannot read the node version '$NODE_VERSION' of $NODE_BIN" ;;
esac
if [ "$node_major" -lt "$NODE_MIN_MAJOR" ] ||
  { [ "$node_major" -eq "$NODE_MIN_MAJOR" ] && [ "$node_minor" -lt "$NODE_MIN_MINOR" ]; }; then
  die "node $NODE_VERSION at $NODE_BIN is too old: eip-edge needs $NODE_MIN_MAJOR.$NODE_MIN_MINOR or later.
  Debian's nodejs package on bookworm is 18. Install Node.js 22 from NodeSource's apt
  repository or the official tarball: see hardware/raspberry-pi.md."
fi
say "node $NODE_VERSION at $NODE_BIN"

if [ "$STAGING" = no ]; then
  command -v npm >/dev/null 2>&1 || die "npm is not on PATH. It comes with Node.js from NodeSource or the official tarball; Debian packages it apart: apt-get install npm"
  command -v systemctl >/dev/null 2>&1 || die "systemctl is missing: this installer sets up a systemd service"
  getent group dialout >/dev/null 2>&1 || die "the group dialout does not exist; serial ports belong to it on Debian"
fi

# --- 2. The npm package --------------------------------------------------------------------
if [ -n "$PACKAGE_ARG" ]; then
  PACKAGE_SPEC=$PACKAGE_ARG
  # A tarball or folder: npm wants it absolute or ./relative.
  if [ -e "$PACKAGE_SPEC" ]; then
    PACKAGE_SPEC=$(cd -- "$(dirname -- "$PACKAGE_SPEC")" && pwd -P)/$(basename -- "$PACKAGE_SPEC")
  fi
else
  PACKAGE_SPEC=${EIP_PACKAGE:-$PACKAGE_NAME}
fi

if [ "$STAGING" = yes ]; then
  step "Installing the npm package $PACKAGE_SPEC"
  run npm install -g --omit=dev "$PACKAGE_SPEC"
  PACKAGE_DIR=$SOURCE_PACKAGE_DIR
  if [ -n "${EIP_EDGE_BIN:-}" ]; then
    EDGE_BIN=$EIP_EDGE_BIN
  else
    EDGE_BIN=$(command -v eip-edge 2>/dev/null) ||
      die "eip-edge is not on PATH: with --root, put the eip-edge to install on PATH or set EIP_EDGE_BIN"
  fi
else
  GLOBAL_PACKAGE_DIR=$(npm root -g)/$PACKAGE_NAME
  if [ -z "$PACKAGE_ARG" ] && [ -z "${EIP_PACKAGE:-}" ] && [ -d "$GLOBAL_PACKAGE_DIR" ] &&
    [ "$(cd -- "$GLOBAL_PACKAGE_DIR" && pwd -P)" = "$SOURCE_PACKAGE_DIR" ]; then
    step "Using the installed npm package at $GLOBAL_PACKAGE_DIR (give a PACKAGE to reinstall)"
  else
    step "Installing the npm package $PACKAGE_SPEC"
    npm install -g --omit=dev "$PACKAGE_SPEC" ||
      die "npm install -g --omit=dev $PACKAGE_SPEC failed (see npm's messages above)"
  fi
  PACKAGE_DIR=$GLOBAL_PACKAGE_DIR
  EDGE_BIN=$(npm prefix -g)/bin/eip-edge
  [ -x "$EDGE_BIN" ] || die "npm installed $PACKAGE_SPEC but $EDGE_BIN is missing; is it $PACKAGE_NAME?"
fi
case $EDGE_BIN in
  /*) ;;
  *) die "the eip-edge path '$EDGE_BIN' is not absolute" ;;
esac
case $EDGE_BIN in
  *[!A-Za-z0-9/._+-]*) die "the eip-edge path '$EDGE_BIN' has characters a unit file would need quoted; install node under a plain path" ;;
esac
PACKAGE_VERSION=$("$NODE_BIN" -p "require(process.argv[1]).version" "$PACKAGE_DIR/package.json" 2>/dev/null) ||
  PACKAGE_VERSION=unknown
say "$PACKAGE_NAME $PACKAGE_VERSION at $PACKAGE_DIR, eip-edge at $EDGE_BIN"

SHIPPED_UNIT=$PACKAGE_DIR/hardware/systemd/$SERVICE.service
SHIPPED_UDEV=$PACKAGE_DIR/hardware/udev/99-eip-rs485.rules
EXAMPLE_CONFIG=$PACKAGE_DIR/edge/config/example.yaml
[ -f "$SHIPPED_UNIT" ] || die "the package has no $SHIPPED_UNIT"
[ -f "$SHIPPED_UDEV" ] || die "the package has no $SHIPPED_UDEV"

# --- 3. The system user --------------------------------------------------------------------
step "System user $SERVICE_USER"
if [ "$STAGING" = yes ]; then
  run useradd --system --user-group --groups dialout --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "EIP edge agent" "$SERVICE_USER"
elif id "$SERVICE_USER" >/dev/null 2>&1; then
  if id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx dialout; then
    say "exists, in the group dialout"
  else
    usermod -a -G dialout "$SERVICE_USER" || die "usermod -a -G dialout $SERVICE_USER failed"
    say "exists; added to the group dialout"
  fi
else
  useradd --system --user-group --groups dialout --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "EIP edge agent" "$SERVICE_USER" ||
    die "useradd $SERVICE_USER failed"
  say "created"
fi

# Sets owner and mode; with --root only the mode (the user may not exist there).
own() { # owner:group mode path
  if [ "$STAGING" = no ]; then chown "$1" "$3"; fi
  chmod "$2" "$3"
}

# --- 4. Directories and the config ---------------------------------------------------------
step "Directories $CONFIG_DIR and $STATE_DIR"
mkdir -p -- "$ROOT$CONFIG_DIR" "$ROOT$STATE_DIR"
own "root:$SERVICE_USER" 0750 "$ROOT$CONFIG_DIR"
own "$SERVICE_USER:$SERVICE_USER" 0750 "$ROOT$STATE_DIR"

step "Config $CONFIG_FILE"
if [ -e "$ROOT$CONFIG_FILE" ]; then
  say "kept the existing file (never overwritten; the example is $EXAMPLE_CONFIG)"
elif [ -f "$EXAMPLE_CONFIG" ]; then
  cp -- "$EXAMPLE_CONFIG" "$ROOT$CONFIG_FILE.tmp"
  own "root:$SERVICE_USER" 0640 "$ROOT$CONFIG_FILE.tmp"
  mv -- "$ROOT$CONFIG_FILE.tmp" "$ROOT$CONFIG_FILE"
  say "copied from $EXAMPLE_CONFIG: edit it for this plant"
else
  warn "the package has no example config at $EXAMPLE_CONFIG; write $CONFIG_FILE yourself"
fi

# --- 5. The unit and the udev rules --------------------------------------------------------
step "Unit $UNIT_FILE"
NODE_DIR=$(dirname -- "$NODE_BIN")
PATH_LINE=
case ":$SYSTEMD_PATH:" in
  *":$NODE_DIR:"*) ;;
  *[!A-Za-z0-9/._+:-]*) die "node's directory '$NODE_DIR' has characters a unit file would need quoted; install node under a plain path" ;;
  *) PATH_LINE="Environment=PATH=$NODE_DIR:$SYSTEMD_PATH" ;;
esac
mkdir -p -- "$(dirname -- "$ROOT$UNIT_FILE")"
# The unit file names the command in ExecStartPre= and ExecStart=; both are rewritten.
sed -e "s|$UNIT_DEFAULT_BIN |$EDGE_BIN |g" "$SHIPPED_UNIT" >"$ROOT$UNIT_FILE.tmp"
if [ -n "$PATH_LINE" ]; then
  sed -e "s|^Environment=NODE_ENV=production\$|&\\
# node is not in systemd's default PATH on this box (install.sh added it).\\
$PATH_LINE|" "$ROOT$UNIT_FILE.tmp" >"$ROOT$UNIT_FILE.tmp2"
  mv -- "$ROOT$UNIT_FILE.tmp2" "$ROOT$UNIT_FILE.tmp"
fi
grep -q "^ExecStart=$EDGE_BIN run " "$ROOT$UNIT_FILE.tmp" ||
  die "could not write the eip-edge path into the unit (the shipped unit has no ExecStart=$UNIT_DEFAULT_BIN run ...)"
own root:root 0644 "$ROOT$UNIT_FILE.tmp"
mv -- "$ROOT$UNIT_FILE.tmp" "$ROOT$UNIT_FILE"
say "ExecStart=$EDGE_BIN run --config $CONFIG_FILE${PATH_LINE:+ (with $NODE_DIR added to PATH)}"

step "udev rules $UDEV_FILE"
mkdir -p -- "$(dirname -- "$ROOT$UDEV_FILE")"
if [ ! -e "$ROOT$UDEV_FILE" ]; then
  cp -- "$SHIPPED_UDEV" "$ROOT$UDEV_FILE.tmp"
  own root:root 0644 "$ROOT$UDEV_FILE.tmp"
  mv -- "$ROOT$UDEV_FILE.tmp" "$ROOT$UDEV_FILE"
  say "installed: uncomment and fill in a rule per adapter (hardware/rs485-wiring.md)"
elif cmp -s -- "$SHIPPED_UDEV" "$ROOT$UDEV_FILE"; then
  say "already installed"
else
  say "kept your edited file (never overwritten; the shipped one is $SHIPPED_UDEV)"
fi

# --- 6. Reload systemd and udev ------------------------------------------------------------
SYSTEMD_RUNNING=yes
if [ "$STAGING" = no ] && [ ! -d /run/systemd/system ]; then
  SYSTEMD_RUNNING=no
  warn "systemd is not running here (a container or chroot?): not reloading, enabling or starting"
fi
if [ "$SYSTEMD_RUNNING" = yes ]; then
  step "Reloading systemd and udev"
  run systemctl daemon-reload
  if [ "$STAGING" = yes ] || command -v udevadm >/dev/null 2>&1; then
    run udevadm control --reload-rules
    run udevadm trigger --subsystem-match=tty
  else
    warn "udevadm is missing: the udev rules apply after a reboot"
  fi
fi

# --- 7. Enable, and start when ready -------------------------------------------------------
# The secret files, if there: the agent reads the keystore; only systemd (root) reads the
# password and the environment file.
if [ "$STAGING" = no ] && [ -f "$KEYSTORE_FILE" ]; then own "root:$SERVICE_USER" 0640 "$KEYSTORE_FILE"; fi
if [ "$STAGING" = no ] && [ -f "$PASSWORD_FILE" ]; then own root:root 0600 "$PASSWORD_FILE"; fi
if [ "$STAGING" = no ] && [ -f "$CONFIG_DIR/env" ]; then own root:root 0600 "$CONFIG_DIR/env"; fi
missing=
config_ok=no
if [ "$STAGING" = no ] && [ -f "$CONFIG_FILE" ]; then
  # As the service user, so a file it cannot read fails here and not at boot; from /, which
  # that user can enter whatever the current directory is.
  if command -v runuser >/dev/null 2>&1; then
    check() { (cd / && runuser -u "$SERVICE_USER" -- "$EDGE_BIN" check-config "$CONFIG_FILE"); }
  else
    check() { (cd / && "$EDGE_BIN" check-config "$CONFIG_FILE"); }
  fi
  step "Checking the config: eip-edge check-config $CONFIG_FILE"
  if check; then
    config_ok=yes
  else
    say "the config is not ready: eip-edge check-config lists the problems above"
  fi
fi
[ "$config_ok" = yes ] || missing="$missing config"
[ -f "$ROOT$KEYSTORE_FILE" ] || missing="$missing keystore"
[ -f "$ROOT$PASSWORD_FILE" ] || missing="$missing password"

if [ "$SYSTEMD_RUNNING" = yes ]; then
  step "Enabling $SERVICE.service (starts at boot)"
  run systemctl enable "$SERVICE.service"
fi

if [ "$STAGING" = yes ]; then
  say
  say "Staged into $ROOT. On a real install the service would start once"
  say "eip-edge check-config accepts $CONFIG_FILE and $KEYSTORE_FILE and $PASSWORD_FILE exist."
  exit 0
fi

if [ "$SYSTEMD_RUNNING" = yes ] && [ "$START" = yes ] && [ -z "$missing" ]; then
  step "Starting $SERVICE.service"
  systemctl restart "$SERVICE.service" || die "systemctl restart $SERVICE failed: journalctl -u $SERVICE -n 50"
  say
  say "eip-edge is running. Check it:"
  say "  systemctl status $SERVICE"
  say "  journalctl -u $SERVICE -f"
  say "  curl -s http://127.0.0.1:9184/health"
  exit 0
fi

say
if [ "$START" = no ]; then
  say "Installed, enabled, not started (--no-start)."
elif [ "$SYSTEMD_RUNNING" = no ]; then
  say "Installed; systemd is not running here, so nothing was enabled or started."
else
  say "Installed and enabled, not started yet. Next steps:"
fi
n=1
case " $missing " in
  *" password "*)
    say "  $n. A random keystore password, root-only, read by systemd at start:"
    say "       sudo sh -c 'umask 077; head -c 32 /dev/urandom | base64 | tr -d \"\\n\" > $PASSWORD_FILE'"
    n=$((n + 1))
    ;;
esac
case " $missing " in
  *" keystore "*)
    say "  $n. The agent's key, encrypted with that password; note the address it prints and"
    say "     register it with the park operator:"
    say "       sudo sh -c 'EIP_EDGE_KEYSTORE_PASSWORD=\"\$(cat $PASSWORD_FILE)\" $EDGE_BIN keystore new --out $KEYSTORE_FILE'"
    say "       sudo chgrp $SERVICE_USER $KEYSTORE_FILE && sudo chmod 0640 $KEYSTORE_FILE"
    n=$((n + 1))
    ;;
esac
case " $missing " in
  *" config "*)
    say "  $n. Edit the config for this plant (meters, broker, prices), then check it. Secrets it"
    say "     names by variable (the broker password) go in $CONFIG_DIR/env, root-only, as VAR=value:"
    say "       sudoedit $CONFIG_FILE"
    say "       sudo $EDGE_BIN check-config $CONFIG_FILE"
    n=$((n + 1))
    ;;
esac
say "  $n. Start it and watch the log:"
say "       sudo systemctl start $SERVICE && journalctl -u $SERVICE -f"
