#!/usr/bin/env bash
# The whole test suite (what CI runs): packages, build, ctest. Needs no network beyond apt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# One test program at a time: each uses 2 LibTorch threads, and oversubscribed OpenMP threads spin.
ctest --test-dir build --output-on-failure --timeout 900
