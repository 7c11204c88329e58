// Learning-rate schedules, as a pure function of the epoch: resuming at epoch e needs no state.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}

namespace qimera::methods {

struct LrSchedule {
  enum class Kind { Constant, MultiStep, Cosine };
  Kind kind = Kind::MultiStep;
  std::vector<int64_t> milestones;  // MultiStep: epochs at which the rate is multiplied by gamma
  double gamma = 0.1;

  /// The multiplier of the base rate during `epoch` (0-based) of `epochs`.
  /// MultiStep: gamma^(number of milestones <= epoch); Cosine: (1 + cos(pi * epoch / epochs)) / 2.
  double factor(int64_t epoch, int64_t epochs) const;

  /// "constant", "cosine", or "multistep:100,200,300" (gamma from --lr-gamma).
  static LrSchedule parse(const std::string& text, double gamma = 0.1);
  std::string to_string() const;
  nlohmann::json to_json() const;
};

/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace qimera::methods
