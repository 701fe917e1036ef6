#!/bin/sh
# The TypeScript client's tests, against the real lookoutd: `sh clients/typescript/test.sh`.
#
# Needs Node >= 18 and a built lookoutd (LOOKOUT_BIN, else <repo>/target/debug/lookoutd). Without
# the binary the tests that need it are skipped on a workstation and fail in CI (CI set, and not
# "false" or "0"). The declarations are type-checked with Debian's tsc (node-typescript), installed
# with apt-get when missing and this runs as root; no npm registry is needed.
set -eu
cd "$(dirname "$0")"

ci=false
case "${CI:-}" in "" | false | 0) ;; *) ci=true ;; esac

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "lookout-client needs Node >= 18; this is $(node --version)" >&2
  exit 1
fi

if ! command -v tsc >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing node-typescript (tsc) with apt-get"
  apt-get install -y --no-install-recommends node-typescript >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends node-typescript >/dev/null; } ||
    true
fi
if command -v tsc >/dev/null 2>&1; then
  echo "== type-checking src/index.d.ts with tsc $(tsc --version | cut -d' ' -f2)"
  tsc -p test/types/tsconfig.json
elif [ "$ci" = true ]; then
  echo "tsc is missing (apt-get install node-typescript): in CI the declarations must be checked" >&2
  exit 1
else
  echo "== tsc not found: the declarations are not type-checked (apt-get install node-typescript)"
fi

echo "== node --test ($(node --version))"
exec node --test test/*.test.mjs
