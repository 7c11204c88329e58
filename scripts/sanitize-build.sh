#!/usr/bin/env bash
# Configures (once) and builds the checking build in build-sanitize/: clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, libFuzzer coverage; the given targets. Used by test-sanitized.sh and
# fuzz.sh; CI does not build it. Slow: about a minute per file on 2 cores, so it runs niced.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX_COMPILER="${CXX_COMPILER:-clang++-14}"
if ! command -v "$CXX_COMPILER" >/dev/null; then
  echo "sanitize-build: $CXX_COMPILER not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f build-sanitize/build.ninja ]; then
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$CXX_COMPILER" -DQIMERA_SANITIZE=address,undefined -DQIMERA_FUZZ=ON \
    -DQIMERA_BUILD_BENCH=OFF \
    $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
nice -n 5 cmake --build build-sanitize -j "${JOBS:-2}" --target "$@"
