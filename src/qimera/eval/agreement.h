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

/// `model`'s logits on `images` (already normalized, [N, C, H, W]) in batches of `batch_size`, under
/// NoGradGuard, as float [N, classes] on the images' device.
at::Tensor logits_of(const Forward& model, const at::Tensor& images, int64_t batch_size);

/// How often `model` logits pick the class `reference` logits pick (both [N, classes], classes
/// counted as the reference's width), per class, and the mean KL divergence between them.
Agreement compare_logits(const at::Tensor& reference, const at::Tensor& model);

/// Top-1 in percent of `logits` [N, classes] against int64 `labels` [N].
double top1(const at::Tensor& logits, const at::Tensor& labels);

/// Images with the reference's logits on them, computed once, so that a model changing over time
/// (Q after every epoch of a run without a test set) is compared with the reference cheaply.
struct ProbeSet {
  at::Tensor images;     // normalized [N, C, H, W]
  at::Tensor reference;  // the reference's logits on them, [N, classes]
  int64_t batch_size = 128;

  /// compare_logits(reference, model's logits on the images).
  Agreement agreement_of(const Forward& model) const;
};

}  // namespace qimera::eval
