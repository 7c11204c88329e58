// Training checkpoints: modules, optimizers, the random generators' states and the next epoch, in one
// file written atomically at the end of every epoch, so that a killed run resumes where it was and,
// when the run is deterministic, ends with the same weights as an uninterrupted one.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace qimera::methods {

/// What a checkpoint holds, by name (names must be stable across runs).
struct TrainingState {
  std::vector<std::pair<std::string, torch::nn::Module*>> modules;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers;
  c10::Device device = c10::kCPU;  // its default generator is saved besides the CPU one
  /// Named tensors outside any module (say, an optimized bank of images), restored in place: the
  /// tensor must already have the saved shape and dtype.
  std::vector<std::pair<std::string, at::Tensor*>> tensors = {};
};

/// Writes the state, `next_epoch` and `extra` (any JSON) atomically to `path`.
void save_checkpoint(const std::filesystem::path& path, const TrainingState& state,
                     int64_t next_epoch, const nlohmann::json& extra = nlohmann::json::object());

struct CheckpointInfo {
  int64_t next_epoch = 0;
  nlohmann::json extra;
};

/// Restores the state (modules, optimizers, generators) in place; errors name the file.
CheckpointInfo load_checkpoint(const std::filesystem::path& path, const TrainingState& state);

}  // namespace qimera::methods
