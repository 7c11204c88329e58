#!/usr/bin/env bash
# Everything the main job needs on a fresh Debian 12 machine: packages, build, default data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh qimera
scripts/prepare-data.sh
