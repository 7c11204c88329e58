#!/usr/bin/env node
// Runs an ONNX model exported by `qimera export` in ONNX Runtime (the npm package onnxruntime-node,
// installed by scripts/install-onnxruntime.sh; found through $QIMERA_ORT_DIR, else the default
// cache folder, else node's own module search). The model takes uint8 pixels [N, C, H, W].
//
//   node scripts/onnx-run.js MODEL.onnx --idx IMAGES --labels LABELS [--batch 256] [--threads N]
//       classifies an IDX image file (28x28 grey, e.g. ~/.cache/qimera/fashion-mnist/t10k-images-idx3-ubyte)
//       and prints {"top1": ..., "images": ..., "images_per_second": ...} as JSON
//   node scripts/onnx-run.js MODEL.onnx --raw INPUT.u8 --shape N,C,H,W --logits OUT.f32 [--batch B]
//       writes the float32 logits of raw uint8 images (what the C++ tests compare)
//   Both take --optimization disabled|basic|extended|all (ONNX Runtime's graph optimizations,
//   default all) and --threads N.
//   node scripts/onnx-run.js --version
//       prints the ONNX Runtime version, or fails when onnxruntime-node is not installed
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function loadOrt() {
  const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'qimera', 'onnxruntime');
  const dirs = [process.env.QIMERA_ORT_DIR, cache].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, 'node_modules', 'onnxruntime-node');
    if (fs.existsSync(candidate)) return require(candidate);
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    fail(`onnxruntime-node not found (looked in ${dirs.join(', ')} and node's module path): run scripts/install-onnxruntime.sh`);
  }
}

function fail(message) {
  process.stderr.write(`onnx-run: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = { batch: 256, threads: 0, optimization: 'all' };
  if (argv.length < 1 || argv[0].startsWith('--')) fail('usage: onnx-run.js MODEL.onnx (--idx IMAGES --labels LABELS | --raw FILE --shape N,C,H,W --logits OUT)');
  args.model = argv[0];
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in { idx: 1, labels: 1, raw: 1, shape: 1, logits: 1, batch: 1, threads: 1, optimization: 1 }) || i + 1 >= argv.length) {
      fail(`unknown or incomplete option ${argv[i]}`);
    }
    args[key] = argv[i + 1];
  }
  args.batch = Number(args.batch);
  args.threads = Number(args.threads);
  return args;
}

function readIdx(file, expectedDims) {
  if (!fs.existsSync(file)) fail(`${file}: no such file`);
  const buf = fs.readFileSync(file);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 8 || buf[3] !== expectedDims) {
    fail(`${file}: not an IDX uint8 file with ${expectedDims} dimension(s)`);
  }
  const dims = [];
  for (let d = 0; d < expectedDims; d++) dims.push(buf.readUInt32BE(4 + 4 * d));
  const offset = 4 + 4 * expectedDims;
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== offset + count) fail(`${file}: ${buf.length} bytes, expected ${offset + count}`);
  return { dims, data: buf.subarray(offset) };
}

async function runBatches(ort, session, pixels, shape, batch, onLogits) {
  const [n, c, h, w] = shape;
  const per = c * h * w;
  for (let start = 0; start < n; start += batch) {
    const size = Math.min(batch, n - start);
    const input = new ort.Tensor('uint8', Uint8Array.from(pixels.subarray(start * per, (start + size) * per)), [size, c, h, w]);
    const out = await session.run({ image: input });
    onLogits(start, size, out.logits.data, out.logits.dims[1]);
  }
}

async function main() {
  if (process.argv[2] === '--version') {
    console.log(`onnxruntime-node ${loadOrt().env.versions.node}`);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(args.model)) fail(`${args.model}: no such file`);
  const ort = loadOrt();
  const options = { graphOptimizationLevel: args.optimization };
  if (args.threads > 0) options.intraOpNumThreads = args.threads;
  const session = await ort.InferenceSession.create(args.model, options);
  if (args.idx) {
    if (!args.labels) fail('--idx needs --labels');
    const images = readIdx(args.idx, 3);
    const labels = readIdx(args.labels, 1);
    const [n, h, w] = images.dims;
    if (labels.dims[0] !== n) fail(`${n} images but ${labels.dims[0]} labels`);
    let correct = 0;
    const t0 = process.hrtime.bigint();
    await runBatches(ort, session, images.data, [n, 1, h, w], args.batch, (start, size, logits, classes) => {
      for (let i = 0; i < size; i++) {
        let best = 0;
        for (let k = 1; k < classes; k++) if (logits[i * classes + k] > logits[i * classes + best]) best = k;
        if (best === labels.data[start + i]) correct++;
      }
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ model: args.model, onnxruntime: ort.env.versions.node, images: n,
      top1: (100 * correct) / n, images_per_second: n / seconds }));
    return;
  }
  if (!args.raw || !args.shape || !args.logits) fail('need --idx and --labels, or --raw, --shape and --logits');
  const shape = args.shape.split(',').map(Number);
  if (shape.length !== 4 || shape.some((d) => !(d > 0))) fail(`--shape ${args.shape}: expected N,C,H,W`);
  const pixels = fs.readFileSync(args.raw);
  if (pixels.length !== shape.reduce((a, b) => a * b, 1)) fail(`${args.raw}: ${pixels.length} bytes for shape ${args.shape}`);
  const chunks = [];
  await runBatches(ort, session, pixels, shape, args.batch, (start, size, logits) => {
    chunks.push(Buffer.from(Float32Array.from(logits).buffer));
  });
  fs.writeFileSync(args.logits, Buffer.concat(chunks));
}

main().catch((e) => fail(e.message));
