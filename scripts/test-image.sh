#!/usr/bin/env bash
# Makes the container image the Docker tests use, from Debian's busybox-static: no registry is needed.
# Idempotent and safe to run from several test processes at once (the import is tagged atomically).
#   scripts/test-image.sh            -> lookout-test/busybox
set -euo pipefail
image="${1:-lookout-test/busybox}"
if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
    echo "$busybox is not a static busybox: apt-get install busybox-static" >&2; exit 1
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for tool in sh sleep echo cat true false date ls wget nc httpd; do ln -s busybox "$root/bin/$tool"; done
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - "$image" >/dev/null
