#include "qimera/data/augment.h"

#include "qimera/core/error.h"
#include "qimera/data/random.h"

#include <ATen/ATen.h>

namespace qimera::data {
namespace {

constexpr uint64_t kAugmentStream = 0x61756700;  // keeps these draws apart from the shuffle's

}  // namespace

bool is_active(const Augment& augment) {
  return augment.crop_padding > 0 || augment.horizontal_flip;
}

at::Tensor augment_image(const at::Tensor& image, const Augment& augment, uint64_t seed,
                         int64_t epoch, int64_t position) {
  require(image.dim() == 3, "augment: expected a [C,H,W] image");
  require(augment.crop_padding >= 0, "augment: crop_padding must not be negative, got {}",
          augment.crop_padding);
  SplitMix64 rng(derive_seed(
      {kAugmentStream, seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(position)}));
  at::Tensor out = image;
  if (augment.crop_padding > 0) {
    const int64_t p = augment.crop_padding;
    const auto top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1)));
    const auto left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1)));
    out = at::constant_pad_nd(out, {p, p, p, p}, 0)
              .narrow(1, top, image.size(1))
              .narrow(2, left, image.size(2));
  }
  if (augment.horizontal_flip && (rng.next() >> 63) != 0) out = out.flip({2});
  return out.contiguous();
}

}  // namespace qimera::data
