#!/usr/bin/env bash
# The README's test command: installs what the interop tests need (Python clients, kcat),
# then runs every test in the workspace. Safe to re-run; works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-interop.sh
export KAFKA_INTEROP_PYTHON="$PWD/.venv/bin/python"
export KAFKA_INTEROP_NODE="${NODE:-node}"

cargo test --workspace --all-targets
cargo test --workspace --doc
