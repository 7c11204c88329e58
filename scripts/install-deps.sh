#!/usr/bin/env bash
# Installs the Debian 12 packages qimera builds, tests and runs with (see README, "Dependencies").
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU): tensors, autograd, modules
  libopenblas0-openmp     # fast BLAS for LibTorch (the reference BLAS is ~40x slower)
  libcli11-dev            # command-line parsing
  nlohmann-json3-dev      # JSON: configs, model cards, manifests, metrics
  libfmt-dev libspdlog-dev  # formatting and logging
  libxxhash-dev           # checksums of checkpoints (header-only use)
  zlib1g-dev              # CRC-32 and deflated records of torch.save zip files
  libpng-dev libturbojpeg0-dev  # decoding ImageNet-style image folders
  libgtest-dev libgmock-dev     # tests
  libbenchmark-dev        # micro-benchmarks
  libonnx-dev             # ONNX export (protobuf classes of the ONNX format)
  gnuplot-nox             # figures of qimera analyze and qimera report (PNG and SVG)
  chromium                # the report's browser check (scripts/check-report.sh, in the tests)
  nodejs                  # ONNX Runtime checks (onnxruntime-node) and fetching the default data
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
