// Accuracy and throughput of a classifier on a data set.
#pragma once

#include "qimera/data/loader.h"

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>

#include <functional>
#include <string>

namespace qimera::eval {

struct Accuracy {
  int64_t samples = 0;
  double top1 = 0;  // percent
  double top5 = 0;  // percent (equals 100 with 5 classes or fewer)
  double seconds = 0;
  double images_per_second() const { return seconds > 0 ? static_cast<double>(samples) / seconds : 0; }
  nlohmann::json to_json() const;
};

/// Top-1 / top-5 of `forward` over one pass of `loader` (eval mode and no gradients are the
/// caller's model's business; this function only calls it under NoGradGuard). `label` names the
/// progress bar; empty hides it.
Accuracy evaluate(const std::function<at::Tensor(const at::Tensor&)>& forward,
                  data::BatchLoader& loader, const std::string& label = "");

/// evaluate() for a module with a Tensor -> Tensor forward, switched to eval mode for the pass and
/// restored afterwards.
template <typename Model>
Accuracy evaluate_model(Model& model, data::BatchLoader& loader, const std::string& label = "") {
  const bool was_training = model.is_training();
  model.eval();
  auto result = evaluate([&](const at::Tensor& x) { return model.forward(x); }, loader, label);
  model.train(was_training);
  return result;
}

}  // namespace qimera::eval
