// Training-time augmentation for teacher training (CIFAR's standard recipe): a random crop of the
// original size out of the zero-padded image, and a random horizontal flip.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace qimera::data {

struct Augment {
  int64_t crop_padding = 0;      // 0 = no random crop
  bool horizontal_flip = false;  // flip with probability 1/2
};

bool is_active(const Augment& augment);

/// Augments one uint8 [C,H,W] image; the random choices are a pure function of
/// (seed, epoch, position), position being the sample's place in the epoch's order.
at::Tensor augment_image(const at::Tensor& image, const Augment& augment, uint64_t seed,
                         int64_t epoch, int64_t position);

}  // namespace qimera::data
