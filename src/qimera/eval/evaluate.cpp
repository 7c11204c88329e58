#include "qimera/eval/evaluate.h"

#include "qimera/core/error.h"
#include "qimera/core/progress.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

namespace qimera::eval {

nlohmann::json Accuracy::to_json() const {
  return {{"samples", samples},
          {"top1", top1},
          {"top5", top5},
          {"seconds", seconds},
          {"images_per_second", images_per_second()}};
}

Accuracy evaluate(const std::function<at::Tensor(const at::Tensor&)>& forward,
                  data::BatchLoader& loader, const std::string& label) {
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  std::optional<ProgressBar> bar;
  if (!label.empty()) bar.emplace(loader.batches_per_epoch(), label);
  // Counts stay on the device until the end: no synchronisation per batch.
  at::Tensor correct1, correct5;
  int64_t samples = 0, batches = 0;
  while (auto batch = loader.next()) {
    const auto logits = forward(batch->images);
    require(logits.dim() == 2 && logits.size(0) == batch->labels.size(0),
            "evaluation: the model returned logits of shape {} for {} images", logits.sizes(),
            batch->labels.size(0));
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    const auto top = std::get<1>(logits.topk(k, 1));
    const auto hits = top.eq(batch->labels.unsqueeze(1));
    const auto c1 = hits.select(1, 0).sum();
    const auto c5 = hits.any(1).sum();
    correct1 = correct1.defined() ? correct1 + c1 : c1;
    correct5 = correct5.defined() ? correct5 + c5 : c5;
    samples += batch->labels.size(0);
    if (bar) bar->update(++batches);
  }
  require(samples > 0, "evaluation: the data set is empty");
  Accuracy result;
  result.samples = samples;
  result.top1 = 100.0 * static_cast<double>(correct1.item<int64_t>()) / static_cast<double>(samples);
  result.top5 = 100.0 * static_cast<double>(correct5.item<int64_t>()) / static_cast<double>(samples);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (bar) bar->finish(fmt::format("top-1 {:.2f}%", result.top1));
  return result;
}

}  // namespace qimera::eval
