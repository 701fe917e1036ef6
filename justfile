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

# The status page in a headless browser (Debian's chromium): a PNG and a check that FAIL shows.
screenshot OUT="target/status-page.png":
    scripts/screenshot-status.sh {{OUT}}

# What CI runs, in a clean clone of this checkout.
ci:
    rm -rf /tmp/lookout-ci && git clone -q . /tmp/lookout-ci && cd /tmp/lookout-ci && CI=true bash .ci/run
