#!/usr/bin/env bash
# The deployment path end to end on the bundled teacher, with the Fashion-MNIST test accuracy at
# every stage: post-training quantization at 4w4a and 8w8a (percentile ranges from N(0,1) noise),
# the fake-quantized model and the int8 engine (qimera eval --engine int8), and the ONNX export in
# ONNX Runtime (INT4 and INT8 containers). Needs a build (scripts/build.sh qimera), the prepared
# data (scripts/prepare-data.sh) and onnxruntime-node (scripts/install-onnxruntime.sh).
#   scripts/deploy-check.sh [OUT_DIR]   (default runs/deploy-check; a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/deploy-check}"
root="${QIMERA_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qimera}/fashion-mnist"
[ -f "$root/test-images-idx3-ubyte" ] || { echo "deploy-check: no Fashion-MNIST in $root (scripts/prepare-data.sh)" >&2; exit 1; }
node scripts/onnx-run.js --version >/dev/null
teacher=assets/fmnist-resnet20/model.json
common=(--device cpu --threads 2 --quiet)
mkdir -p "$out"
rows=()
for bits in 4 8; do
  run="$out/ptq-${bits}w${bits}a"
  rm -rf "$run"
  ./build/qimera quantize --method ptq --wbits "$bits" --abits "$bits" --observer percentile \
    --calib-data noise --model "$teacher" --out "$run" "${common[@]}" >/dev/null
  ./build/qimera eval --engine int8 --model "$run/quantized.json" --data fashion-mnist:test \
    --json "$run/eval.json" "${common[@]}" >/dev/null
  # The int8 engine's grids for tensors the model keeps in float, from real images instead of noise.
  ./build/qimera eval --engine int8 --model "$run/quantized.json" --data fashion-mnist:test \
    --calib-data fashion-mnist:train --json "$run/eval-train-calibration.json" "${common[@]}" >/dev/null
  ./build/qimera export "$run" "${common[@]}" >/dev/null
  ./build/qimera export "$run" --int8-containers "${common[@]}" >/dev/null
  for onnx in "$run/quantized.onnx" "$run/quantized.int8.onnx"; do
    node scripts/onnx-run.js "$onnx" --idx "$root/test-images-idx3-ubyte" \
      --labels "$root/test-labels-idx1-ubyte" --threads 2 > "${onnx%.onnx}.ort.json"
  done
  rows+=("$run")
done
# One table from the JSON files.
node - "${rows[@]}" <<'EOF'
const fs = require('fs');
const pad = (s, n) => String(s).padEnd(n);
console.log(pad('model', 34) + pad('top-1 %', 9) + pad('images/s', 10) + 'file bytes');
for (const run of process.argv.slice(2)) {
  const e = JSON.parse(fs.readFileSync(`${run}/eval.json`)).results;
  for (const r of e) console.log(pad(r.model, 34) + pad(r.top1.toFixed(2), 9) + pad(Math.round(r.images_per_second), 10));
  const t = JSON.parse(fs.readFileSync(`${run}/eval-train-calibration.json`)).results[2];
  console.log(pad('  same, grids from 512 train images', 34) + pad(t.top1.toFixed(2), 9) + pad(Math.round(t.images_per_second), 10));
  for (const [file, label] of [['quantized', 'ONNX Runtime, native containers'], ['quantized.int8', 'ONNX Runtime, INT8 containers']]) {
    const o = JSON.parse(fs.readFileSync(`${run}/${file}.ort.json`));
    console.log(pad(`  ${label}`, 34) + pad(o.top1.toFixed(2), 9) + pad(Math.round(o.images_per_second), 10) +
                fs.statSync(`${run}/${file}.onnx`).size);
  }
}
EOF
