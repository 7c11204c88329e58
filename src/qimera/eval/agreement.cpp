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

Agreement measure_agreement(const Forward& reference, const Forward& model, const at::Tensor& images,
                            int64_t batch_size, int64_t num_classes) {
  require(images.dim() == 4 && images.size(0) > 0, "agreement: expected a non-empty [N, C, H, W] batch");
  require(batch_size > 0 && num_classes > 0, "agreement: batch size and classes must be positive");
  c10::NoGradGuard no_grad;
  Agreement a;
  a.class_images.assign(static_cast<size_t>(num_classes), 0);
  a.class_agreed.assign(static_cast<size_t>(num_classes), 0);
  double agreed = 0, kl_sum = 0;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const auto batch = images.slice(0, start, std::min(start + batch_size, images.size(0)));
    const auto p = reference(batch).to(at::kFloat), q = model(batch).to(at::kFloat);
    require(p.dim() == 2 && p.size(1) == num_classes && q.sizes() == p.sizes(),
            "agreement: expected logits [N, {}] from both models, got {} and {}", num_classes,
            p.sizes(), q.sizes());
    const auto picked = p.argmax(1), same = picked.eq(q.argmax(1));
    agreed += same.sum().item<double>();
    const auto log_p = p.log_softmax(1), log_q = q.log_softmax(1);
    kl_sum += (log_p.exp() * (log_p - log_q)).sum().item<double>();
    const auto counts = at::bincount(picked.cpu(), {}, num_classes);
    const auto hits = at::bincount(picked.cpu(), same.cpu().to(at::kDouble), num_classes);
    for (int64_t c = 0; c < num_classes; ++c) {
      a.class_images[static_cast<size_t>(c)] += counts[c].item<int64_t>();
      a.class_agreed[static_cast<size_t>(c)] += std::llround(hits[c].item<double>());
    }
  }
  a.images = images.size(0);
  a.top1 = 100.0 * agreed / static_cast<double>(a.images);
  a.kl = kl_sum / static_cast<double>(a.images);
  return a;
}

double top1(const Forward& model, const at::Tensor& images, const at::Tensor& labels, int64_t batch_size) {
  require(images.dim() == 4 && images.size(0) > 0 && labels.dim() == 1 && labels.size(0) == images.size(0),
          "top1: expected [N, C, H, W] images and [N] labels, got {} and {}", images.sizes(), labels.sizes());
  require(batch_size > 0, "top1: the batch size must be positive");
  c10::NoGradGuard no_grad;
  double correct = 0;
  for (int64_t start = 0; start < images.size(0); start += batch_size) {
    const auto end = std::min(start + batch_size, images.size(0));
    const auto picked = model(images.slice(0, start, end)).argmax(1).cpu();
    correct += picked.eq(labels.slice(0, start, end).cpu()).sum().item<double>();
  }
  return 100.0 * correct / static_cast<double>(images.size(0));
}

}  // namespace qimera::eval
