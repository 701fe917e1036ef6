# Everyday recipes. The README's commands work without `just`.

# Run the daemon on its embedded default (SQLite in ./.lookout, 127.0.0.1:8484).
run *ARGS:
    cargo run --release -p lookoutd -- {{ARGS}}

# The test suite (SQLite and PostgreSQL).
test:
    cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks; figures go to docs/performance.md.
bench:
    cargo bench -p lookout-store --bench append
    cargo bench -p lookout-crash-detect --bench in_flight
    cargo bench -p lookout-status-collect --bench status_latency
    cargo bench -p lookout-e2e --bench ingest_load
    cargo bench -p lookout-e2e --bench status_load
    cargo bench -p lookout-e2e --bench time_to_know
    cargo bench -p lookout-e2e --bench watchdog_idle
    cargo bench -p lookout-reconcile-core
    cargo bench -p lookout-scheduler --bench scheduler
    cargo bench -p lookout-watchdog --bench detection

# Fuzz each parser for SECONDS (cargo-fuzz, nightly); crashes land in fuzz/artifacts/.
fuzz SECONDS="60":
    scripts/fuzz.sh {{SECONDS}}

# The status page in a headless browser (Debian's chromium): a PNG and a check that FAIL shows.
screenshot OUT="target/status-page.png":
    scripts/screenshot-status.sh {{OUT}}

# What CI runs, in a clean clone of this checkout.
ci:
    rm -rf /tmp/lookout-ci && git clone -q . /tmp/lookout-ci && cd /tmp/lookout-ci && CI=true bash .ci/run
