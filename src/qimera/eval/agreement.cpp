#include "qimera/eval/agreement.h"

#include "qimera/core/error.h"
#include "qimera/core/fmt_torch.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace qimera::eval {

int64_t Agreement::classes_seen() const {
  int64_t seen = 0;
  for (auto n : class_images) seen += n > 0;
  return seen;
}

double Agreement::class_top1(int64_t c) const {
  const auto n = class_images.at(static_cast<size_t>(c));
  return n > 0 ? 100.0 * static_cast<double>(class_agreed[static_cast<size_t>(c)]) / static_cast<double>(n)
               : std::numeric_limits<double>::quiet_NaN();
}

int64_t Agreement::worst_class() const {
  int64_t worst = -1;
  for (int64_t c = 0; c < static_cast<int64_t>(class_images.size()); ++c) {
    if (class_images[static_cast<size_t>(c)] == 0) continue;
    if (worst < 0 || class_top1(c) < class_top1(worst)) worst = c;
  }
  return worst;
}

nlohmann::json Agreement::to_json() const {
  nlohmann::json per_class = nlohmann::json::array();
  for (int64_t c = 0; c < static_cast<int64_t>(class_images.size()); ++c) {
    const auto n = class_images[static_cast<size_t>(c)];
    per_class.push_back({{"class", c}, {"images", n}, {"agreed", class_agreed[static_cast<size_t>(c)]}});
  }
  nlohmann::json j = {{"images", images}, {"top1_agreement", top1}, {"kl", kl},
                      {"classes_seen", classes_seen()}, {"per_class", per_class}};
  if (const auto w = worst_class(); w >= 0) {
    j["worst_class"] = {{"class", w}, {"top1_agreement", class_top1(w)}};
  }
  return j;
}

at::Tensor logits_of(const Forward& model, const at::Tensor& images, int64_t batch_size) {
  require(images.dim() == 4 && images.size(0) > 0, "logits: expected a non-empty [N, C, H, W] batch, got {}",
          images.sizes());
  require(batch_size > 0, "logits: the batch size must be positive");
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    parts.push_back(model(images.slice(0, start, std::min(start + batch_size, images.size(0)))).to(at::kFloat));
  }
  return at::cat(parts, 0);
}

Agreement compare_logits(const at::Tensor& reference, const at::Tensor& model) {
  require(reference.dim() == 2 && reference.size(0) > 0 && model.sizes() == reference.sizes(),
          "agreement: expected logits of one shape [N, classes] from both models, got {} and {}",
          reference.sizes(), model.sizes());
  const int64_t classes = reference.size(1);
  const auto picked = reference.argmax(1).cpu(), same = picked.eq(model.argmax(1).cpu());
  const auto log_p = reference.log_softmax(1), log_q = model.log_softmax(1);
  const auto counts = at::bincount(picked, {}, classes), hits = at::bincount(picked, same.to(at::kDouble), classes);
  Agreement a;
  a.images = reference.size(0);
  a.top1 = 100.0 * same.sum().item<double>() / static_cast<double>(a.images);
  a.kl = (log_p.exp() * (log_p - log_q)).sum().item<double>() / static_cast<double>(a.images);
  for (int64_t c = 0; c < classes; ++c) {
    a.class_images.push_back(counts[c].item<int64_t>());
    a.class_agreed.push_back(std::llround(hits[c].item<double>()));
  }
  return a;
}

double top1(const at::Tensor& logits, const at::Tensor& labels) {
  require(logits.dim() == 2 && logits.size(0) > 0 && labels.dim() == 1 && labels.size(0) == logits.size(0),
          "top1: expected [N, classes] logits and [N] labels, got {} and {}", logits.sizes(), labels.sizes());
  const auto correct = logits.argmax(1).cpu().eq(labels.cpu()).sum().item<double>();
  return 100.0 * correct / static_cast<double>(logits.size(0));
}

Agreement ProbeSet::agreement_of(const Forward& model) const {
  return compare_logits(reference, logits_of(model, images, batch_size));
}

}  // namespace qimera::eval
