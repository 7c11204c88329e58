// How often a model picks the class a reference model picks on the same images. With the
// full-precision source as reference and images distilled from it, this checks a quantized model
// where no labelled data exists (qimera check): a quantized model that lost its accuracy on real
// images disagrees with its source there too, while its agreement on the generator's own training
// images can stay high (docs/results.md, ZAQ at 3 bits).
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace qimera::eval {

struct Agreement {
  int64_t images = 0;
  double top1 = 0;  // percent of images where both models pick the same class
  double kl = 0;    // mean KL(reference softmax || model softmax), nats
  std::vector<int64_t> class_images;  // per class the reference picks: how many images
  std::vector<int64_t> class_agreed;  // ... and on how many of them the model picks it too

  /// Classes the reference picks for at least one image.
  int64_t classes_seen() const;
  /// Among those, the class with the lowest agreement (the first on ties); -1 when there is none.
  int64_t worst_class() const;
  /// Agreement in percent on the images the reference puts in `c` (NaN when there are none).
  double class_top1(int64_t c) const;
  nlohmann::json to_json() const;
};

using Forward = std::function<at::Tensor(const at::Tensor&)>;

/// Both models' logits on `images` (already normalized, [N, C, H, W]) in batches of `batch_size`,
/// under NoGradGuard; `num_classes` sizes the per-class counts (the logits' width must match).
Agreement measure_agreement(const Forward& reference, const Forward& model, const at::Tensor& images,
                            int64_t batch_size, int64_t num_classes);

/// Top-1 in percent of `model` on `images` against int64 `labels` [N], in batches, under NoGradGuard.
double top1(const Forward& model, const at::Tensor& images, const at::Tensor& labels, int64_t batch_size);

}  // namespace qimera::eval
