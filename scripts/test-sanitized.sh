#!/usr/bin/env bash
# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer (build-sanitize/, clang).
# Any report fails the test program that triggered it. LibTorch itself is not instrumented; the
# suppressions in scripts/sanitizers/ name what of it the sanitizers flag (leaks of its global
# registries at exit), nothing of qimera's.
# Usage: scripts/test-sanitized.sh [ctest arguments, e.g. -R test_io]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/sanitize-build.sh qimera test_core test_io test_data test_quant test_models \
  test_generator test_eval test_deploy test_methods test_cli
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/scripts/sanitizers/ubsan.supp:${UBSAN_OPTIONS:-}"
ctest --test-dir build-sanitize --output-on-failure --timeout 3600 "$@"
