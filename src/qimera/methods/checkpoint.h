// Training checkpoints: modules, optimizers, named tensors, the random generators' states and the
// next epoch, in one file written atomically at the end of every epoch, so that a killed run resumes
// where it was and, when the run is deterministic, ends with the same weights as an uninterrupted
// one.
//
// The file is a safetensors file (io/safetensors.h), read by the project's own reader: loading a
// checkpoint runs nothing found in it (LibTorch's archive reader, used before, runs TorchScript
// code stored in the file). Its metadata holds the next epoch, the caller's `extra` JSON, the
// optimizers' options and steps, and an integrity record: an XXH3-128 checksum of every tensor
// (with its dtype and shape) and of the metadata, verified on every load. Nothing is changed in
// memory unless the whole file checks out.
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

/// What a checkpoint holds, by name (names must be stable across runs and contain no '.').
/// Optimizers may be torch::optim::SGD or torch::optim::Adam; their per-parameter state is stored
/// in param-group order, so the optimizer that loads it must have the same groups and parameters.
struct TrainingState {
  std::vector<std::pair<std::string, torch::nn::Module*>> modules;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers;
  c10::Device device = c10::kCPU;  // its default generator is saved besides the CPU one
  /// Named tensors outside any module (say, an optimized bank of images), restored in place: the
  /// tensor must already have the saved shape and dtype.
  std::vector<std::pair<std::string, at::Tensor*>> tensors = {};
};

/// Writes the state, `next_epoch` and `extra` (any JSON) atomically to `path`. A failed write
/// (full disk, read-only folder) is a qimera::Error naming `path`, and leaves the previous
/// checkpoint in place and no temporary file.
void save_checkpoint(const std::filesystem::path& path, const TrainingState& state,
                     int64_t next_epoch, const nlohmann::json& extra = nlohmann::json::object());

struct CheckpointInfo {
  int64_t next_epoch = 0;
  nlohmann::json extra;
};

/// Verifies the file's integrity record, then restores the state (modules, tensors, optimizers,
/// generators) in place. Errors name the file and what does not match (a tensor whose checksum
/// differs, a missing or unexpected entry, a shape or dtype, an optimizer of another kind); after
/// an error the state is unchanged.
CheckpointInfo load_checkpoint(const std::filesystem::path& path, const TrainingState& state);

}  // namespace qimera::methods
