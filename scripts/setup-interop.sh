#!/usr/bin/env bash
# Idempotent installer for the third-party Kafka tooling used by interop tests
# and by scripts/capture_golden.py:
#
#   * apt: kcat (CLI Kafka client, used by interop tests) and tcpdump (loopback
#     capture for the golden vectors) -- only installed if the binary is missing;
#     python3-venv only if `python3 -m venv` does not work.
#   * a Python venv at <repo>/.venv with the exact versions pinned in
#     scripts/requirements-interop.txt (confluent-kafka, which bundles
#     librdkafka, and kafka-python plus its compression codecs).
#   * Node.js (apt `nodejs npm`, only if `node` or `npm` is missing) and kafkajs
#     from tests/interop/kafkajs/package-lock.json (`npm ci`), only when
#     node_modules is missing or the lock file changed since the last install.
#
# Runs unattended (no stdin) as root on a fresh Debian machine. Safe to re-run:
# it only does work that is still missing. Environment overrides:
#   PYTHON=/path/to/python3   interpreter used to create the venv
#   VENV=/path/to/venv        venv location (default <repo>/.venv)
#   NODE=/path/to/node        Node.js interpreter checked for kafkajs (default `node`)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
REQS="$SCRIPT_DIR/requirements-interop.txt"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup-interop] %s\n' "$*"; }
start_ts=$(date +%s)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

apt_updated=0
apt_install() {
    # apt_install <package>...  (apt-get update once, then install)
    if ! command -v apt-get >/dev/null 2>&1; then
        log "ERROR: apt-get not available; please install manually: $*" >&2
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        $SUDO apt-get update -qq </dev/null
        apt_updated=1
    fi
    log "apt-get install $*"
    $SUDO apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

# --- apt packages (only when the binary is missing) --------------------------
need_pkgs=()
for pair in kcat:kcat tcpdump:tcpdump; do
    bin="${pair%%:*}"; pkg="${pair##*:}"
    if command -v "$bin" >/dev/null 2>&1; then
        log "ok: $bin already installed ($(command -v "$bin"))"
    else
        need_pkgs+=("$pkg")
    fi
done

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    need_pkgs+=(python3)
    PYTHON=python3
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    apt_install "${need_pkgs[@]}"
fi

# python3 -m venv needs ensurepip (Debian ships it in python3-venv).
if [ ! -x "$VENV/bin/python" ]; then
    probe="$(mktemp -d)"
    if ! "$PYTHON" -m venv "$probe/v" >/dev/null 2>&1; then
        pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        apt_install python3-venv "python${pyver}-venv" || apt_install python3-venv
    fi
    rm -rf "$probe"
fi

# --- venv -------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "ok: venv exists at $VENV"
else
    log "creating venv at $VENV with $("$PYTHON" --version 2>&1)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Install pinned requirements only if something is missing or has the wrong
# version (keeps re-runs fast and offline-friendly).
reqs_ok() {
    "$VENV/bin/python" - "$REQS" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = version(name.strip())
    except PackageNotFoundError:
        have = None
    if have != want.strip():
        ok = False
sys.exit(0 if ok else 1)
PY
}

if reqs_ok; then
    log "ok: pinned Python packages already installed"
else
    log "pip install -r $REQS"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --no-input -r "$REQS"
fi

# --- Node.js + kafkajs (tests/interop/kafkajs) --------------------------------
KAFKAJS_DIR="$REPO_ROOT/tests/interop/kafkajs"
NODE="${NODE:-node}"
if command -v "$NODE" >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    log "ok: node $("$NODE" --version) and npm $(npm --version 2>/dev/null) already installed"
else
    apt_install nodejs npm
    NODE=node
fi
node_major="$("$NODE" -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 14 ]; then
    log "ERROR: kafkajs needs Node.js >= 14, $NODE is $("$NODE" --version)" >&2
    exit 1
fi

# npm ci only when node_modules is missing, the lock file changed since the last install
# (a stamp with its checksum, written after a successful `npm ci`), or kafkajs does not load.
lock_sum="$(sha256sum "$KAFKAJS_DIR/package-lock.json" | cut -d' ' -f1)"
stamp="$KAFKAJS_DIR/node_modules/.interop-lock.sha256"
kafkajs_ok() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] &&
        (cd "$KAFKAJS_DIR" && "$NODE" -e 'require("kafkajs")' >/dev/null 2>&1)
}
if kafkajs_ok; then
    log "ok: kafkajs already installed in $KAFKAJS_DIR/node_modules"
else
    log "npm ci in $KAFKAJS_DIR"
    (cd "$KAFKAJS_DIR" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    printf '%s\n' "$lock_sum" >"$stamp"
fi

# --- report ------------------------------------------------------------------
"$VENV/bin/python" - <<'PY'
import confluent_kafka, kafka
print("[setup-interop] confluent-kafka %s (librdkafka %s)"
      % (confluent_kafka.__version__, confluent_kafka.libversion()[0]))
print("[setup-interop] kafka-python %s" % kafka.__version__)
PY
for bin in kcat tcpdump; do
    if command -v "$bin" >/dev/null 2>&1; then
        case "$bin" in
            kcat) v="$(kcat -V 2>&1 | head -n1)" ;;
            tcpdump) v="$(tcpdump --version 2>&1 | head -n1)" ;;
        esac
        log "$bin: $v"
    fi
done
log "kafkajs $(cd "$KAFKAJS_DIR" && "$NODE" -p 'require("kafkajs/package.json").version') (node $("$NODE" --version))"
log "done in $(( $(date +%s) - start_ts ))s (venv: $VENV)"
