#!/usr/bin/env bash
# The Python client's tests against the real lookoutd.
#
#   clients/python/test.sh [pytest args…]
#
# lookoutd is $LOOKOUT_BIN, else <repo>/target/debug/lookoutd (build it first: cargo build -p
# lookoutd). Installs pytest and this package (pip install ./clients/python, exactly what a host
# does) into a virtualenv under /tmp ($LOOKOUT_PY_VENV), created once and reused; where Python has no
# venv module (Debian without python3-venv) it installs them with `pip --target` into a directory
# put on PYTHONPATH instead. Works as root; needs python3 with pip, and PyPI for pytest (or pytest
# already installed). In CI (CI set, not "false"/"0") a missing lookoutd fails the tests.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$repo/target/debug/lookoutd}

if [ ! -x "$LOOKOUT_BIN" ]; then
  echo "test.sh: no lookoutd at $LOOKOUT_BIN (cargo build -p lookoutd, or set LOOKOUT_BIN)" >&2
  case "${CI:-}" in ""|false|0) ;; *) exit 1 ;; esac
fi

venv=${LOOKOUT_PY_VENV:-/tmp/lookout-client-py-venv}
if "$python" -m venv --help >/dev/null 2>&1 && { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" 2>/dev/null; }; then
  py="$venv/bin/python"
  "$py" -m pip install --quiet --disable-pip-version-check pytest
  # --force-reinstall: the checkout's current code, not the copy installed by an earlier run.
  "$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"
else
  rm -rf "$venv" 2>/dev/null || true
  target=${venv}-target
  rm -rf "$target"
  "$python" -m pip install --quiet --disable-pip-version-check --target "$target" pytest "$here"
  export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
  py=$python
fi

# Run from outside the checkout so `import lookout_client` finds the installed package.
cd "$here/tests"
exec "$py" -m pytest -p no:cacheprovider -q "$@"
