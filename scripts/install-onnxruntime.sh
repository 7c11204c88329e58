#!/usr/bin/env bash
# Installs the pinned ONNX Runtime for Node (npm package onnxruntime-node, with its prebuilt native
# library inside) into a cache folder, for scripts/onnx-run.js and the ONNX Runtime tests. Needs the
# npm registry once; afterwards everything runs offline. The package's postinstall step (it only
# fetches optional CUDA binaries) is skipped.
#   folder: $QIMERA_ORT_DIR, else ${XDG_CACHE_HOME:-~/.cache}/qimera/onnxruntime
set -euo pipefail
version=1.23.2
dir="${QIMERA_ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qimera/onnxruntime}"
marker="$dir/node_modules/onnxruntime-node/package.json"
if [ -f "$marker" ] && grep -q "\"version\": \"$version\"" "$marker"; then
  echo "install-onnxruntime: onnxruntime-node $version present in $dir"
  exit 0
fi
command -v npm >/dev/null || { echo "install-onnxruntime: npm is missing (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "install-onnxruntime: installing onnxruntime-node@$version into $dir"
npm install --prefix "$dir" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
  "onnxruntime-node@$version"
node -e "const o = require('$dir/node_modules/onnxruntime-node'); console.log('install-onnxruntime: ONNX Runtime', o.env.versions.node)"
