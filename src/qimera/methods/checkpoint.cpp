#include "qimera/methods/checkpoint.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"

#include <ATen/Context.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace qimera::methods {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVersion = 1;

std::vector<std::pair<std::string, at::Generator>> generators(c10::Device device) {
  std::vector<std::pair<std::string, at::Generator>> out{
      {"cpu", at::globalContext().defaultGenerator(c10::kCPU)}};
  if (!device.is_cpu()) {
    out.emplace_back(device.str(), at::globalContext().defaultGenerator(device));
  }
  return out;
}

}  // namespace

void save_checkpoint(const fs::path& path, const TrainingState& state, int64_t next_epoch,
                     const nlohmann::json& extra) {
  torch::serialize::OutputArchive archive;
  archive.write("version", c10::IValue(kVersion));
  archive.write("next_epoch", c10::IValue(next_epoch));
  archive.write("extra", c10::IValue(extra.dump()));
  for (const auto& [name, module] : state.modules) {
    torch::serialize::OutputArchive sub;
    module->save(sub);
    archive.write("module." + name, sub);
  }
  for (const auto& [name, optimizer] : state.optimizers) {
    torch::serialize::OutputArchive sub;
    optimizer->save(sub);
    archive.write("optimizer." + name, sub);
  }
  for (const auto& [name, tensor] : state.tensors) archive.write("tensor." + name, *tensor);
  for (auto& [name, generator] : generators(state.device)) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng." + name, generator.get_state());
  }
  write_atomically(path, [&](const fs::path& tmp) { archive.save_to(tmp.string()); });
}

CheckpointInfo load_checkpoint(const fs::path& path, const TrainingState& state) {
  require(fs::exists(path), "no checkpoint at {} (nothing to resume)", path.string());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue value;
    archive.read("version", value);
    require(value.toInt() == kVersion, "{}: checkpoint version {} (expected {})", path.string(),
            value.toInt(), kVersion);
    CheckpointInfo info;
    archive.read("next_epoch", value);
    info.next_epoch = value.toInt();
    archive.read("extra", value);
    info.extra = nlohmann::json::parse(value.toStringRef());
    for (const auto& [name, module] : state.modules) {
      torch::serialize::InputArchive sub;
      archive.read("module." + name, sub);
      module->load(sub);
    }
    for (const auto& [name, optimizer] : state.optimizers) {
      torch::serialize::InputArchive sub;
      archive.read("optimizer." + name, sub);
      // Loading adds the saved per-parameter state but keeps entries it does not mention (say,
      // momentum from a diverged attempt): start from none.
      optimizer->state().clear();
      optimizer->load(sub);
    }
    for (const auto& [name, tensor] : state.tensors) {
      at::Tensor saved;
      archive.read("tensor." + name, saved);
      require(saved.sizes() == tensor->sizes() && saved.scalar_type() == tensor->scalar_type(),
              "{}: tensor '{}' has shape {} in the checkpoint, {} expected", path.string(), name,
              saved.sizes(), tensor->sizes());
      at::NoGradGuard no_grad;
      tensor->copy_(saved);
    }
    for (auto& [name, generator] : generators(state.device)) {
      at::Tensor rng;
      archive.read("rng." + name, rng);
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
    return info;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("{}: cannot resume from this checkpoint (corrupt, or from a different model or "
         "configuration): {}",
         path.string(), std::string(e.what()).substr(0, 400));
  }
}

}  // namespace qimera::methods
