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

pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=${LOOKOUT_PY_VENV:-/tmp/lookout-client-py$pyver-venv}
# A venv with a working pip (one left half-made by a venv module without ensurepip is remade).
make_venv() {
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    return 0
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip --version >/dev/null 2>&1
}
pip_quiet=(--quiet --disable-pip-version-check)
if make_venv; then
  py="$venv/bin/python"
  "$py" -m pip install "${pip_quiet[@]}" pytest
  # --force-reinstall: the checkout's current code, not the copy installed by an earlier run.
  "$py" -m pip install "${pip_quiet[@]}" --force-reinstall --no-deps "$here"
else
  echo "test.sh: no usable venv module (Debian: apt-get install python3-venv); using pip --target" >&2
  rm -rf "$venv"
  target=${venv}-target
  rm -rf "$target"
  "$python" -m pip install "${pip_quiet[@]}" --target "$target" pytest "$here"
  export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
  py=$python
fi
# pip builds in the source tree: leave the checkout as it was.
rm -rf "$here/build" "$here/src/"*.egg-info

# From tests/, `import lookout_client` finds the installed package (the sources are under src/).
cd "$here/tests"
exec "$py" -m pytest -p no:cacheprovider -q "$@"
