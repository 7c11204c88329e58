// Pixel-space mixing of a batch with a permutation of itself, as the augmentations' reference
// implementations do it (baselines.md section 3): Mixup (facebookresearch/mixup-cifar10), a convex
// blend with one lambda per batch; Cutmix (clovaai/CutMix-PyTorch), a box of the partner pasted in,
// lambda recomputed from the box's exact area. Targets mix in the same proportion. Pure functions of
// their random draws, so tests can pin them; sample_mix draws them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

namespace qimera::generator {

enum class MixKind { Mixup, Cutmix };
std::string_view to_string(MixKind kind);

/// Rows [top, bottom) and columns [left, right) of a Cutmix box.
struct Box {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  int64_t area() const { return (bottom - top) * (right - left); }
};

/// The reference's box for an H x W image: side ratio sqrt(1 - lambda), cut = floor(side * ratio),
/// centre (cy, cx), the box [c - cut/2, c + cut/2) clipped to the image, per axis.
Box cutmix_box(int64_t height, int64_t width, double lambda, int64_t cy, int64_t cx);

/// A mixed batch: images, targets and the lambda that weights the original samples.
struct Mixed {
  at::Tensor images, targets;
  double lambda = 1;
};

/// x = lambda * x + (1 - lambda) * x[perm]; the same for the targets (if defined).
Mixed mixup(const at::Tensor& images, const at::Tensor& targets, const at::Tensor& permutation,
            double lambda);

/// x gets x[perm]'s pixels inside `box`; lambda = 1 - area / (H * W); targets mix with it.
Mixed cutmix(const at::Tensor& images, const at::Tensor& targets, const at::Tensor& permutation,
             const Box& box);

/// lambda ~ Beta(alpha, alpha), from LibTorch's default CPU generator (as a host number).
double sample_beta(double alpha);

/// Draws the permutation, lambda and (Cutmix) the box's centre from the default CPU generator, then
/// mixes. The permutation is moved to the images' device.
Mixed sample_mix(MixKind kind, const at::Tensor& images, const at::Tensor& targets, double alpha);

}  // namespace qimera::generator
