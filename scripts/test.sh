#!/usr/bin/env bash
# The whole test suite (what CI runs): packages, build, ctest. Needs apt and, once, the npm registry:
# ONNX Runtime (the pinned npm package onnxruntime-node) goes into a cache folder
# (scripts/install-onnxruntime.sh) and the ONNX Runtime tests are then required to run, not skipped.
# QIMERA_SKIP_ONNXRUNTIME=1 skips that installation (those tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${QIMERA_SKIP_ONNXRUNTIME:-0}" != 1 ]; then
  scripts/install-onnxruntime.sh
  export QIMERA_REQUIRE_ONNXRUNTIME=1
fi
scripts/build.sh
# One test program at a time: each uses 2 LibTorch threads, and oversubscribed OpenMP threads spin.
ctest --test-dir build --output-on-failure --timeout 900
