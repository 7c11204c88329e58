// Accuracy and throughput of a classifier on a data set.
#pragma once

#include "qimera/data/loader.h"

#include <c10/util/ScopeExit.h>
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

/// `measure()` with `model` in eval mode (its batch norms use their running statistics and learn
/// nothing from what is measured), then `model` back in the mode it had, also when `measure` throws.
template <typename Model, typename Measure>
auto in_eval_mode(Model& model, Measure&& measure) {
  const bool was_training = model.is_training();
  model.eval();
  const auto restore = c10::make_scope_exit([&] { model.train(was_training); });
  return measure();
}

/// evaluate() for a module with a Tensor -> Tensor forward, in eval mode for the pass.
template <typename Model>
Accuracy evaluate_model(Model& model, data::BatchLoader& loader, const std::string& label = "") {
  return in_eval_mode(model, [&] {
    return evaluate([&](const at::Tensor& x) { return model.forward(x); }, loader, label);
  });
}

}  // namespace qimera::eval
