#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for a bounded time: scripts/fuzz.sh [SECONDS] [TARGET...]
# (default 60 s each, every target). The corpus grows in fuzz/corpus/<target> (not committed), seeded
# from fuzz/corpus-seeds/<target> (committed). A crash stops that target with a non-zero exit; its
# input is in fuzz/artifacts/<target>/, `cargo fuzz tmin <target> <file>` minimises it.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain for the sanitizer;
# without nightly, stable works with RUSTC_BOOTSTRAP=1 (set FUZZ_TOOLCHAIN=stable).
# FUZZ_RUNS=N runs each target N inputs from a fixed seed instead of for SECONDS (what CI does: the
# same inputs on every run, so a red CI is a real finding, never the luck of the draw).
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz"

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if [[ "$toolchain" == stable ]]; then
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
else
    cargo_fuzz=(cargo "+$toolchain" fuzz)
fi
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <("${cargo_fuzz[@]}" list)
fi

"${cargo_fuzz[@]}" build -O

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${FUZZ_RUNS:+$FUZZ_RUNS runs from seed 1}${FUZZ_RUNS:-${seconds}s}"
    if [[ -n "${FUZZ_RUNS:-}" ]]; then
        budget=(-runs="$FUZZ_RUNS" -seed=1)
    else
        budget=(-max_total_time="$seconds")
    fi
    if ! "${cargo_fuzz[@]}" run -O "$t" "corpus/$t" "corpus-seeds/$t" -- \
        "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
if [[ -n "${FUZZ_RUNS:-}" ]]; then each="$FUZZ_RUNS runs"; else each="${seconds}s"; fi
echo "fuzz.sh: no crash in ${targets[*]} ($each each)"
