#!/usr/bin/env bash
# Configures (once) and builds qimera in build/ (Release): the given targets, else everything
# (library, CLI, tests, benchmarks). Example: scripts/build.sh qimera
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
if [ $# -gt 0 ]; then
  cmake --build build --target "$@"
else
  cmake --build build
fi
