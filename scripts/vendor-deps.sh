#!/usr/bin/env bash
# Copies the header-only dependencies and GoogleTest's sources from this Debian machine into a
# folder (default .device/vendor), for building on a machine that lacks the -dev packages:
#   cmake -S . -B build -DQIMERA_VENDOR_DIR=$PWD/.device/vendor -DCMAKE_PREFIX_PATH=<LibTorch>
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.device/vendor}"
rm -rf "$out"
mkdir -p "$out/include"
for dir in fmt spdlog nlohmann CLI; do cp -r "/usr/include/$dir" "$out/include/"; done
cp /usr/include/xxhash.h "$out/include/"
cp -r /usr/src/googletest "$out/googletest"
du -sh "$out"
