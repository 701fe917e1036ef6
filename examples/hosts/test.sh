#!/usr/bin/env bash
# Runs the example hosts end to end against the real lookoutd: each host is made to fail the seeds'
# ways and the messages a person gets are asserted.
#
#   examples/hosts/test.sh
#
# Needs python3 with pip (and PyPI or a wheel mirror for pytest), Node >= 20, Docker (the Python
# host's tasks run in containers of lookout-test:latest, made from busybox by
# scripts/test-image.sh: nothing is pulled) and lookoutd ($LOOKOUT_BIN, else target/debug/lookoutd).
# In CI (CI set, not "false"/"0") nothing may skip: anything missing is a failure. Elsewhere a host
# whose tools are missing is skipped with a message.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export LOOKOUT_BIN=${LOOKOUT_BIN:-$repo/target/debug/lookoutd}
case "${CI:-}" in ""|false|0) ci= ;; *) ci=1 ;; esac

status=0
missing() {  # host, what
  if [ -n "$ci" ]; then
    echo "== $1: FAILED: $2 (in CI nothing may be skipped)" >&2
    status=1
  else
    echo "== $1: skipped: $2" >&2
  fi
}
if [ -n "$ci" ] && [ ! -x "$LOOKOUT_BIN" ]; then
  echo "== no lookoutd at $LOOKOUT_BIN (in CI nothing may be skipped)" >&2
  exit 1
fi
if [ -n "$ci" ] && ! docker version >/dev/null 2>&1; then
  echo "== Docker is not reachable (in CI nothing may be skipped)" >&2
  exit 1
fi

run() {  # host, tool needed
  local host=$1 tool=$2 start=$SECONDS
  if ! command -v "$tool" >/dev/null 2>&1; then
    missing "$host" "no $tool"
    return
  fi
  echo "== $host"
  if "$here/$host/test.sh"; then
    echo "== $host: passed in $((SECONDS - start))s"
  else
    echo "== $host: FAILED after $((SECONDS - start))s" >&2
    status=1
  fi
}
run python-scheduler python3
run typescript-queue node
exit $status
