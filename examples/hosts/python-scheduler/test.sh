#!/usr/bin/env bash
# minipynchy's end-to-end tests against the real lookoutd and Docker.
#
#   examples/hosts/python-scheduler/test.sh [pytest args…]
#
# lookoutd is $LOOKOUT_BIN, else <repo>/target/debug/lookoutd. Makes the task image
# (scripts/test-image.sh lookout-test:latest, from busybox: nothing is pulled). Installs pytest and
# the Python client (pip install ./clients/python, as a host does) into a venv under /tmp
# ($LOOKOUT_EXAMPLES_VENV), made once and reused; without a venv module, `pip --target`. In CI (CI
# set, not "false"/"0") a missing lookoutd, Docker or image fails the tests instead of skipping them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
python=${PYTHON:-python3}
export LOOKOUT_BIN=${LOOKOUT_BIN:-$repo/target/debug/lookoutd}
case "${CI:-}" in ""|false|0) ci= ;; *) ci=1 ;; esac

if [ ! -x "$LOOKOUT_BIN" ]; then
  echo "python-scheduler/test.sh: no lookoutd at $LOOKOUT_BIN (cargo build -p lookoutd, or set LOOKOUT_BIN)" >&2
  [ -z "$ci" ] || exit 1
fi
if command -v docker >/dev/null 2>&1; then
  "$repo/scripts/test-image.sh" lookout-test:latest || [ -z "$ci" ] || exit 1
else
  echo "python-scheduler/test.sh: no docker: the task tests skip" >&2
  [ -z "$ci" ] || exit 1
fi

pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=${LOOKOUT_EXAMPLES_VENV:-/tmp/lookout-examples-py$pyver-venv}
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
  # --force-reinstall: the checkout's client, not a copy installed by an earlier run.
  "$py" -m pip install "${pip_quiet[@]}" --force-reinstall --no-deps "$repo/clients/python"
else
  echo "python-scheduler/test.sh: no usable venv module; using pip --target" >&2
  rm -rf "$venv"
  target=${venv}-target
  rm -rf "$target"
  "$python" -m pip install "${pip_quiet[@]}" --target "$target" pytest "$repo/clients/python"
  export PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}"
  py=$python
fi
# pip builds in the client's source tree: leave the checkout as it was.
rm -rf "$repo/clients/python/build" "$repo/clients/python/src/"*.egg-info

cd "$here/tests"
exec "$py" -m pytest -p no:cacheprovider -q -s "$@"
