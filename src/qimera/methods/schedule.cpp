#include "qimera/methods/schedule.h"

#include "qimera/core/error.h"

#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <cmath>

namespace qimera::methods {

double LrSchedule::factor(int64_t epoch, int64_t epochs) const {
  switch (kind) {
    case Kind::Constant: return 1.0;
    case Kind::MultiStep: {
      const auto passed = std::count_if(milestones.begin(), milestones.end(),
                                        [&](int64_t m) { return epoch >= m; });
      return std::pow(gamma, static_cast<double>(passed));
    }
    case Kind::Cosine:
      return 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(epoch) /
                                   static_cast<double>(std::max<int64_t>(epochs, 1))));
  }
  return 1.0;
}

LrSchedule LrSchedule::parse(const std::string& text, double gamma) {
  LrSchedule s;
  s.gamma = gamma;
  require(gamma > 0 && gamma <= 1, "learning-rate gamma {} must be in (0, 1]", gamma);
  if (text == "constant") {
    s.kind = Kind::Constant;
    return s;
  }
  if (text == "cosine") {
    s.kind = Kind::Cosine;
    return s;
  }
  const std::string prefix = "multistep:";
  require(text.rfind(prefix, 0) == 0,
          "learning-rate schedule '{}': expected constant, cosine or multistep:E1,E2,...", text);
  s.kind = Kind::MultiStep;
  std::string rest = text.substr(prefix.size());
  size_t start = 0;
  while (start <= rest.size() && !rest.empty()) {
    const size_t comma = rest.find(',', start);
    const std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    try {
      size_t used = 0;
      const long long value = std::stoll(item, &used);
      require(used == item.size() && value >= 0, "bad milestone");
      s.milestones.push_back(value);
    } catch (const std::exception&) {
      fail("learning-rate schedule '{}': '{}' is not an epoch number", text, item);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  require(std::is_sorted(s.milestones.begin(), s.milestones.end()),
          "learning-rate schedule '{}': milestones must increase", text);
  return s;
}

std::string LrSchedule::to_string() const {
  switch (kind) {
    case Kind::Constant: return "constant";
    case Kind::Cosine: return "cosine";
    case Kind::MultiStep: return fmt::format("multistep:{}", fmt::join(milestones, ","));
  }
  return "?";
}

nlohmann::json LrSchedule::to_json() const { return {{"schedule", to_string()}, {"gamma", gamma}}; }

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    auto& options = group.options();
    if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      sgd->lr(lr);
    } else if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      adam->lr(lr);
    } else {
      fail("set_learning_rate: unsupported optimizer");
    }
  }
}

}  // namespace qimera::methods
