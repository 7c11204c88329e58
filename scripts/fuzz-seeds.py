#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/) into a folder, one sub-folder per target:
small valid files of every kind each parser reads, made with PyTorch, Pillow and the standard
library (Debian's python3-torch and python3-pil). Usage: scripts/fuzz-seeds.py OUT_DIR"""
import collections
import io
import json
import os
import struct
import sys
import zipfile

import torch
from PIL import Image


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    codes = {torch.float32: "F32", torch.int64: "I64", torch.uint8: "U8", torch.bool: "BOOL",
             torch.float16: "F16", torch.int32: "I32"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def torch_save(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def main(out):
    torch.manual_seed(0)
    state = collections.OrderedDict(
        [("conv.weight", torch.randn(2, 1, 3, 3)), ("conv.bias", torch.zeros(2)),
         ("bn.num_batches_tracked", torch.tensor(3)), ("mask", torch.tensor([True, False]))])
    folder = os.path.join(out, "fuzz_safetensors")
    write(folder, "state.safetensors", safetensors(state, {"format": "pt"}))
    write(folder, "empty.safetensors", safetensors({}))
    write(folder, "half.safetensors", safetensors({"h": torch.ones(3, dtype=torch.float16),
                                                   "i": torch.arange(4, dtype=torch.int32)}))

    folder = os.path.join(out, "fuzz_torch_zip")
    saved = torch_save(state)
    write(folder, "state.pt", saved)
    write(folder, "checkpoint.pt", torch_save({"epoch": 3, "state_dict": state}))
    view = torch.arange(12.0).reshape(3, 4)
    write(folder, "views.pt", torch_save(collections.OrderedDict(
        [("t", view.t()), ("row", view[1]), ("p", torch.nn.Parameter(torch.ones(2)))])))
    # The same archive with deflated records, which torch.load reads too.
    with zipfile.ZipFile(io.BytesIO(saved)) as src:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info.filename))
        write(folder, "deflated.pt", buffer.getvalue())
        pickles = [src.read(n) for n in src.namelist() if n.endswith("data.pkl")]

    folder = os.path.join(out, "fuzz_unpickler")
    write(folder, "state.pkl", pickles[0])
    write(folder, "tiny.pkl",
          b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wctorch._utils\n"
          b"_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
          b"0X\x03\x00\x00\x00cpuK\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89ccollections\n"
          b"OrderedDict\n)RtRs.")

    folder = os.path.join(out, "fuzz_idx")
    pixels = bytes(range(3 * 4 * 4))
    write(folder, "images.idx3", struct.pack(">IIII", 0x803, 3, 4, 4) + pixels)
    write(folder, "labels.idx1", struct.pack(">II", 0x801, 3) + bytes([0, 7, 2]))

    folder = os.path.join(out, "fuzz_cifar")
    record = bytes([3]) + bytes(i % 256 for i in range(3072))
    write(folder, "cifar10.bin", record + bytes([9]) + record[1:])
    write(folder, "cifar100.bin", bytes([1, 42]) + record[1:])

    folder = os.path.join(out, "fuzz_image")
    rgb = Image.frombytes("RGB", (5, 3), bytes(range(45)))
    for name, image, kwargs in [
            ("rgb.png", rgb, {}), ("grey.png", rgb.convert("L"), {}),
            ("palette.png", rgb.convert("P"), {}), ("alpha.png", rgb.convert("RGBA"), {}),
            ("interlaced.png", rgb, {"interlace": 1}), ("grey16.png", rgb.convert("L").convert("I"), {}),
            ("one_bit.png", rgb.convert("1"), {}),
            ("baseline.jpg", rgb, {"quality": 90}), ("grey.jpg", rgb.convert("L"), {}),
            ("progressive.jpg", rgb, {"progressive": True}), ("cmyk.jpg", rgb.convert("CMYK"), {}),
            ("subsampled.jpg", rgb.resize((17, 9)), {"subsampling": 2})]:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if name.endswith(".png") else "JPEG", **kwargs)
        write(folder, name, buffer.getvalue())

    folder = os.path.join(out, "fuzz_json_config")
    preprocess = {"resize": 0, "center_crop": 0, "pad": 2, "grey_to_rgb": False,
                  "mean": [0.286], "std": [0.353]}
    model = {"arch": "resnet20", "num_classes": 10, "in_channels": 1, "image_size": 28}
    quantization = {"weight_bits": 4, "act_bits": 4, "ste": "unclipped",
                    "observer": {"kind": "ema", "beta": 0.9, "percentile": 99.99},
                    "overrides": [{"pattern": "@first", "weight_bits": 8, "act_bits": 8}]}
    write(folder, "card.json", json.dumps({
        "format": "qimera-model/1", "model": model, "weights": "model.safetensors",
        "preprocess": preprocess, "class_names": [str(i) for i in range(10)],
        "provenance": {"command": "qimera train"}}).encode())
    write(folder, "manifest.json", json.dumps({
        "format": "qimera-quantized/1", "model": model, "quantization": quantization,
        "layers": [{"name": "features.init_block.conv", "kind": "conv", "bits": 8}],
        "preprocess": preprocess, "weights": "quantized.safetensors"}).encode())
    write(folder, "generator.json", json.dumps({
        "num_classes": 10, "image_size": 32, "channels": 3, "embedding_dim": 64, "disentangle": True,
        "disentangle_dim": 100, "conditional_bn": False, "embedding_init": "random",
        "freeze_embeddings": False}).encode())
    write(folder, "superposition.json", b'{"k": 2, "p": 0.4}')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus")
