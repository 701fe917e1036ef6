#!/usr/bin/env bash
# miniclaw's end-to-end tests against the real lookoutd (node:test; no npm registry needed).
#
#   examples/hosts/typescript-queue/test.sh [node --test options…]
#
# lookoutd is $LOOKOUT_BIN, else <repo>/target/debug/lookoutd. Needs Node >= 20. The client comes
# from the checkout: node_modules/lookout-client is linked to clients/typescript, which is what
# `npm install` of package.json's `file:` dependency makes. In CI (CI set, not "false"/"0") a
# missing lookoutd fails the tests instead of skipping them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
export LOOKOUT_BIN=${LOOKOUT_BIN:-$repo/target/debug/lookoutd}
case "${CI:-}" in ""|false|0) ci= ;; *) ci=1 ;; esac

if [ ! -x "$LOOKOUT_BIN" ]; then
  echo "typescript-queue/test.sh: no lookoutd at $LOOKOUT_BIN (cargo build -p lookoutd, or set LOOKOUT_BIN)" >&2
  [ -z "$ci" ] || exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "typescript-queue/test.sh: Node >= 20 needed, found $(node --version)" >&2
  exit 1
fi

mkdir -p "$here/node_modules"
ln -sfn ../../../../clients/typescript "$here/node_modules/lookout-client"

cd "$here"
exec node --test "$@" test/*.test.mjs
