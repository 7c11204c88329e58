#!/usr/bin/env bash
# The GPU check, run on the lent GPU machine (see README, "GPU"): builds against the installed
# PyTorch's LibTorch (2.x, CUDA) with the vendored header-only dependencies (.device/vendor, from
# scripts/vendor-deps.sh), runs the test suite (its CUDA tests included), the training-step
# benchmark on CUDA, and the main job's evaluation on CUDA. Everything is logged to $OUT/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/qimera-gpu}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
step() { echo; echo "=== $* ($(date +%T))"; }

step environment
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'cxx11abi', torch._C._GLIBCXX_USE_CXX11_ABI)"
g++ --version | head -1; cmake --version | head -1; ninja --version
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"

step configure
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DQIMERA_VENDOR_DIR="$PWD/.device/vendor" > "$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
grep -E "LibTorch|CUDA" "$out/configure.log" | head -5

step build
cmake --build build-gpu -j 16 -- -k 0 > "$out/build.log" 2>&1
status=$?
grep -E "error|FAILED" "$out/build.log" | head -60
[ $status -eq 0 ] || { echo "build failed"; exit 1; }

step tests
(cd build-gpu && ctest -j 8 --output-on-failure --timeout 600) > "$out/ctest.log" 2>&1
tail -25 "$out/ctest.log"
if ! ./build-gpu/tests/test_core --gtest_brief=1 > /dev/null 2>&1; then
  echo "test_core failed: backtrace"
  cuda-gdb -batch -ex run -ex bt --args ./build-gpu/tests/test_core 2>&1 | grep -v "^\[" | tail -30
fi
for t in build-gpu/tests/test_*; do
  [ -x "$t" ] && "$t" --gtest_filter='Cuda*' --gtest_brief=1 2>&1 | tail -3
done

step benchmark
./build-gpu/bench/bench_train_step --device cuda --iterations 20

step main job on CUDA
if [ -f .device/data/fashion-mnist/test-labels-idx1-ubyte ]; then
  ./build-gpu/qimera eval --device cuda --data-root .device/data --model assets/fmnist-resnet20/model.json --data fashion-mnist:test
  ./build-gpu/qimera quantize --device cuda --data-root .device/data --method qimera --preset fmnist-short \
    --model assets/fmnist-resnet20/model.json --test-data fashion-mnist:test --out /tmp/run-gpu --quiet
fi
step done
