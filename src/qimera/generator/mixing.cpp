#include "qimera/generator/mixing.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace qimera::generator {

std::string_view to_string(MixKind kind) { return kind == MixKind::Mixup ? "mixup" : "cutmix"; }

Box cutmix_box(int64_t height, int64_t width, double lambda, int64_t cy, int64_t cx) {
  require(height >= 1 && width >= 1, "cutmix: image of {}x{}", height, width);
  require(lambda >= 0 && lambda <= 1, "cutmix: lambda {} outside [0, 1]", lambda);
  const double ratio = std::sqrt(1.0 - lambda);
  // The reference truncates (np.int) and then takes cut // 2 on each side of the centre.
  const auto half_h = static_cast<int64_t>(static_cast<double>(height) * ratio) / 2;
  const auto half_w = static_cast<int64_t>(static_cast<double>(width) * ratio) / 2;
  Box b;
  b.top = std::clamp<int64_t>(cy - half_h, 0, height);
  b.bottom = std::clamp<int64_t>(cy + half_h, 0, height);
  b.left = std::clamp<int64_t>(cx - half_w, 0, width);
  b.right = std::clamp<int64_t>(cx + half_w, 0, width);
  return b;
}

namespace {

void check_batch(const at::Tensor& images, const at::Tensor& targets, const at::Tensor& permutation) {
  require(images.dim() == 4, "mixing needs images [B, C, H, W], got {}", images.sizes());
  require(permutation.dim() == 1 && permutation.size(0) == images.size(0),
          "mixing: permutation of {} for a batch of {}", permutation.numel(), images.size(0));
  require(!targets.defined() || (targets.dim() == 2 && targets.size(0) == images.size(0)),
          "mixing: targets {} for a batch of {}", targets.sizes(), images.size(0));
}

at::Tensor mix_targets(const at::Tensor& targets, const at::Tensor& permutation, double lambda) {
  if (!targets.defined()) return targets;
  return lambda * targets + (1 - lambda) * targets.index_select(0, permutation);
}

}  // namespace

Mixed mixup(const at::Tensor& images, const at::Tensor& targets, const at::Tensor& permutation,
            double lambda) {
  check_batch(images, targets, permutation);
  require(lambda >= 0 && lambda <= 1, "mixup: lambda {} outside [0, 1]", lambda);
  Mixed out;
  out.lambda = lambda;
  out.images = lambda * images + (1 - lambda) * images.index_select(0, permutation);
  out.targets = mix_targets(targets, permutation, lambda);
  return out;
}

Mixed cutmix(const at::Tensor& images, const at::Tensor& targets, const at::Tensor& permutation,
             const Box& box) {
  check_batch(images, targets, permutation);
  const int64_t h = images.size(2), w = images.size(3);
  require(box.top >= 0 && box.top <= box.bottom && box.bottom <= h && box.left >= 0 &&
              box.left <= box.right && box.right <= w,
          "cutmix: box rows [{}, {}) cols [{}, {}) outside a {}x{} image", box.top, box.bottom,
          box.left, box.right, h, w);
  auto inside = at::zeros({1, 1, h, w}, images.options().dtype(at::kBool));
  inside.slice(2, box.top, box.bottom).slice(3, box.left, box.right).fill_(true);
  Mixed out;
  // where() copies exactly and passes gradients to both sources.
  out.images = at::where(inside, images.index_select(0, permutation), images);
  out.lambda = 1.0 - static_cast<double>(box.area()) / static_cast<double>(h * w);
  out.targets = mix_targets(targets, permutation, out.lambda);
  return out;
}

double sample_beta(double alpha) {
  require(alpha > 0 && std::isfinite(alpha), "Beta(alpha, alpha) needs alpha > 0, got {}", alpha);
  const auto g = at::_standard_gamma(at::full({2}, alpha, at::TensorOptions().dtype(at::kDouble)));
  const double a = g[0].item<double>(), b = g[1].item<double>();
  return a + b > 0 ? a / (a + b) : 0.5;
}

Mixed sample_mix(MixKind kind, const at::Tensor& images, const at::Tensor& targets, double alpha) {
  const double lambda = sample_beta(alpha);
  const auto permutation = at::randperm(images.size(0), at::TensorOptions().dtype(at::kLong))
                               .to(images.device());
  if (kind == MixKind::Mixup) return mixup(images, targets, permutation, lambda);
  const int64_t h = images.size(2), w = images.size(3);
  const auto centre = at::rand({2}, at::TensorOptions().dtype(at::kDouble));
  const auto cy = std::min<int64_t>(static_cast<int64_t>(centre[0].item<double>() * h), h - 1);
  const auto cx = std::min<int64_t>(static_cast<int64_t>(centre[1].item<double>() * w), w - 1);
  return cutmix(images, targets, permutation, cutmix_box(h, w, lambda, cy, cx));
}

}  // namespace qimera::generator
