#!/bin/bash
# The benchmarks' extra dependency, kept out of the main set-up: Debian's python3-torch (PyTorch
# 1.13, CPU) runs bench/reference_step.py, the PyTorch side of bench_train_step's comparison.
set -euo pipefail
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "bench/setup.sh: python3-torch present ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch
