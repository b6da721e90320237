#!/usr/bin/env bash
# Runs one cargo-fuzz target of kafka-wire for a fixed time, from any working directory.
#
#   fuzz/run.sh <target> <seconds> [extra libFuzzer flags...]
#
# Targets: request_decode, response_decode, record_batch_decode, decompress (`cargo fuzz list`).
# Works on the *stable* toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags
# cargo-fuzz passes (-Zsanitizer=address, sancov); no nightly needed. Environment:
#   FUZZ_SANITIZER  address (default) or none (~2-3x faster, no ASan; Rust code is memory safe
#                   anyway, ASan mostly adds coverage of zstd's C code and the malloc hooks)
# Crashes go to fuzz/artifacts/<target>/; the corpus (fuzz/corpus/<target>/) is regenerated
# by examples/seed_corpus.rs when it is missing or empty.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <target> <seconds> [libFuzzer flags...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

corpus="corpus/$target"
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "run.sh: generating seed corpora in $here/corpus" >&2
    cargo run --quiet --release --example seed_corpus -- "$here/corpus"
fi

export RUSTC_BOOTSTRAP=1
exec cargo fuzz run --debug-assertions --sanitizer "${FUZZ_SANITIZER:-address}" \
    "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -print_final_stats=1 "$@"
