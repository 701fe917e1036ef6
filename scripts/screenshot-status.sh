#!/usr/bin/env bash
# Renders lookoutd's status page in a headless browser (Debian's chromium) and checks that a fail
# verdict is visible: starts a real lookoutd whose gateway points at a Docker socket that does not
# exist, screenshots `/` to a PNG, and checks the rendered DOM shows FAIL with its reason.
#   scripts/screenshot-status.sh [OUT.png]        (default: target/status-page.png)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/status-page.png}"
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 1; }
cargo build -q --release -p lookoutd
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/lookout.toml" <<TOML
[gateway]
mode = "litellm"
containers = ["litellm"]

[docker]
socket = "unix://$work/no-docker.sock"
TOML
target/release/lookoutd --config "$work/lookout.toml" --state-dir "$work/state" --bind "127.0.0.1:$port" \
    >"$work/lookoutd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
done
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,900)
mkdir -p "$(dirname "$out")"
"$browser" "${flags[@]}" --screenshot="$out" "http://127.0.0.1:$port/" 2>/dev/null
dom="$("$browser" "${flags[@]}" --dump-dom "http://127.0.0.1:$port/" 2>/dev/null)"
grep -q '>FAIL</div>' <<<"$dom" || { echo "the rendered page shows no FAIL verdict" >&2; exit 1; }
grep -q 'docker engine unreachable' <<<"$dom" || { echo "the rendered page lacks the reason" >&2; exit 1; }
[ -s "$out" ] || { echo "no screenshot written" >&2; exit 1; }
echo "status page rendered with a FAIL verdict: $out ($(stat -c %s "$out") bytes)"
