#include "qimera/methods/checkpoint.h"

#include "qimera/core/checksum.h"
#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_value.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <fmt/ranges.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>

#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

namespace qimera::methods {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kCheckpointFormat = "qimera-checkpoint/2";

// ---- Names and checksums ------------------------------------------------------------------------

std::string module_key(const std::string& module, const std::string& tensor) {
  return "module." + module + "." + tensor;
}
std::string tensor_key(const std::string& name) { return "tensor." + name; }
std::string optimizer_key(const std::string& optimizer, size_t param, const char* field) {
  return fmt::format("optimizer.{}.{}.{}", optimizer, param, field);
}
std::string rng_key(const std::string& device) { return "rng." + device; }

void check_names(const TrainingState& state) {
  std::set<std::string> seen;
  auto check = [&](const std::string& kind, const std::string& name) {
    require(!name.empty() && name.find('.') == std::string::npos,
            "checkpoint: the {} name '{}' must be non-empty and contain no '.'", kind, name);
    require(seen.insert(kind + ":" + name).second, "checkpoint: two {}s are named '{}'", kind, name);
  };
  for (const auto& [name, module] : state.modules) check("module", name);
  for (const auto& [name, optimizer] : state.optimizers) check("optimizer", name);
  for (const auto& [name, tensor] : state.tensors) check("tensor", name);
}

// The checksum covers the name, dtype and shape as well as the bytes: the same bytes read as
// another dtype or shape are different numbers.
std::string tensor_checksum(const std::string& name, const at::Tensor& cpu) {
  Checksum checksum;
  checksum.update(fmt::format("{}\n{}\n[{}]\n", name, cpu.scalar_type(), fmt::join(cpu.sizes(), ",")));
  if (cpu.nbytes() > 0) checksum.update(cpu.data_ptr(), cpu.nbytes());
  return checksum.hex();
}

std::vector<std::pair<std::string, at::Generator>> generators(c10::Device device) {
  std::vector<std::pair<std::string, at::Generator>> out{
      {"cpu", at::globalContext().defaultGenerator(c10::kCPU)}};
  if (!device.is_cpu()) {
    out.emplace_back(device.str(), at::globalContext().defaultGenerator(device));
  }
  return out;
}

at::Tensor generator_state(at::Generator& generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

// ---- Optimizers ---------------------------------------------------------------------------------

// LibTorch keys per-parameter state by the parameter's TensorImpl: as its address printed to a
// string in 1.x (c10::guts::to_string, an ostringstream), as the pointer itself in later versions.
template <typename Map>
typename Map::key_type state_key(const Map&, const at::Tensor& param) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream text;
    text << static_cast<const void*>(param.unsafeGetTensorImpl());
    return text.str();
  } else {
    return static_cast<typename Map::key_type>(param.unsafeGetTensorImpl());
  }
}

std::vector<at::Tensor> params_in_order(const torch::optim::Optimizer& optimizer) {
  std::vector<at::Tensor> params;
  for (const auto& group : optimizer.param_groups()) {
    params.insert(params.end(), group.params().begin(), group.params().end());
  }
  return params;
}

torch::optim::OptimizerParamState* param_state(const torch::optim::Optimizer& optimizer,
                                               const at::Tensor& param) {
  const auto& states = optimizer.state();
  const auto found = states.find(state_key(states, param));
  return found == states.end() ? nullptr : found->second.get();
}

json group_options(const torch::optim::OptimizerOptions& options) {
  if (const auto* sgd = dynamic_cast<const torch::optim::SGDOptions*>(&options)) {
    return {{"lr", sgd->lr()},
            {"momentum", sgd->momentum()},
            {"dampening", sgd->dampening()},
            {"weight_decay", sgd->weight_decay()},
            {"nesterov", sgd->nesterov()}};
  }
  const auto& adam = dynamic_cast<const torch::optim::AdamOptions&>(options);
  return {{"lr", adam.lr()},
          {"betas", {std::get<0>(adam.betas()), std::get<1>(adam.betas())}},
          {"eps", adam.eps()},
          {"weight_decay", adam.weight_decay()},
          {"amsgrad", adam.amsgrad()}};
}

const char* optimizer_kind(const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::SGD*>(&optimizer)) return "sgd";
  if (dynamic_cast<const torch::optim::Adam*>(&optimizer)) return "adam";
  return nullptr;
}

// Adds the optimizer's tensors to `tensors` and returns its record for the metadata.
json save_optimizer(const std::string& name, const torch::optim::Optimizer& optimizer,
                    io::StateDict& tensors) {
  const char* kind = optimizer_kind(optimizer);
  require(kind != nullptr, "checkpoint: optimizer '{}' is neither SGD nor Adam, which are the "
          "optimizers checkpoints can hold", name);
  json groups = json::array();
  for (const auto& group : optimizer.param_groups()) {
    json entry = group_options(group.options());
    entry["params"] = group.params().size();
    groups.push_back(entry);
  }
  json steps = json::object();
  const auto params = params_in_order(optimizer);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto* state = param_state(optimizer, params[i]);
    if (state == nullptr) continue;
    if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state)) {
      tensors.emplace_back(optimizer_key(name, i, "momentum_buffer"), sgd->momentum_buffer());
      continue;
    }
    const auto& adam = dynamic_cast<const torch::optim::AdamParamState&>(*state);
    steps[std::to_string(i)] = adam.step();
    tensors.emplace_back(optimizer_key(name, i, "exp_avg"), adam.exp_avg());
    tensors.emplace_back(optimizer_key(name, i, "exp_avg_sq"), adam.exp_avg_sq());
    if (adam.max_exp_avg_sq().defined()) {
      tensors.emplace_back(optimizer_key(name, i, "max_exp_avg_sq"), adam.max_exp_avg_sq());
    }
  }
  return {{"name", name}, {"kind", kind}, {"groups", groups}, {"steps", steps}};
}

// ---- Loading: everything is checked first, then applied ----------------------------------------

class Loader {
 public:
  Loader(const fs::path& path, io::StateDict file) : source_(path.string()) {
    for (auto& [name, tensor] : file) tensors_.emplace(name, std::move(tensor));
  }

  [[noreturn]] void error(const std::string& message) const { fail("{}: {}", source_, message); }

  // The file's tensor `key`, which must have `like`'s shape and dtype.
  const at::Tensor& take(const std::string& key, const at::Tensor& like, const std::string& what) {
    const auto found = tensors_.find(key);
    if (found == tensors_.end()) {
      error(fmt::format("has no entry '{}' for {} (written for another model or configuration?)",
                        key, what));
    }
    used_.insert(key);
    const at::Tensor& value = found->second;
    if (value.sizes() != like.sizes() || value.scalar_type() != like.scalar_type()) {
      error(fmt::format("entry '{}' is {} [{}], but {} is {} [{}]", key, value.scalar_type(),
                        fmt::join(value.sizes(), ", "), what, like.scalar_type(),
                        fmt::join(like.sizes(), ", ")));
    }
    return value;
  }

  bool has(const std::string& key) const { return tensors_.count(key) > 0; }

  void copy_into(const at::Tensor& target, const std::string& key, const std::string& what) {
    const at::Tensor& value = take(key, target, what);
    actions_.push_back([target, value]() mutable {
      at::NoGradGuard no_grad;
      target.copy_(value);
    });
  }

  void then(std::function<void()> action) { actions_.push_back(std::move(action)); }

  void finish() {
    for (const auto& [key, tensor] : tensors_) {
      if (!used_.count(key)) {
        error(fmt::format("holds an entry '{}' that nothing here expects (written for another "
                          "model or configuration?)", key));
      }
    }
    for (auto& action : actions_) action();
  }

 private:
  std::string source_;
  std::map<std::string, at::Tensor> tensors_;
  std::set<std::string> used_;
  std::vector<std::function<void()>> actions_;
};

void plan_module(Loader& loader, const std::string& name, torch::nn::Module& module) {
  for (const auto& [key, tensor] : io::state_dict_of(module)) {
    loader.copy_into(tensor, module_key(name, key), fmt::format("{}'s '{}'", name, key));
  }
}

void plan_rng(Loader& loader, c10::Device device) {
  for (auto& [name, generator] : generators(device)) {
    const at::Tensor current = generator_state(generator);
    const at::Tensor saved = loader.take(rng_key(name), current, "the random generator of " + name);
    loader.then([generator = generator, saved]() mutable {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(saved);
    });
  }
}

const json& json_at(const json& object, const char* key, const Loader& loader) {
  if (!object.is_object() || !object.contains(key)) {
    loader.error(fmt::format("its metadata has no \"{}\"", key));
  }
  return object.at(key);
}

void restore_options(torch::optim::OptimizerOptions& options, const json& saved) {
  const auto number = [&](const char* key) { return json_number(saved.at(key), key); };
  if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
    sgd->lr(number("lr")).momentum(number("momentum")).dampening(number("dampening"));
    sgd->weight_decay(number("weight_decay")).nesterov(json_bool(saved.at("nesterov"), "nesterov"));
    return;
  }
  auto& adam = dynamic_cast<torch::optim::AdamOptions&>(options);
  const json& betas = saved.at("betas");
  adam.lr(number("lr")).eps(number("eps")).weight_decay(number("weight_decay"));
  adam.betas({json_number(betas.at(0), "betas[0]"), json_number(betas.at(1), "betas[1]")});
  adam.amsgrad(json_bool(saved.at("amsgrad"), "amsgrad"));
}

void plan_optimizer(Loader& loader, const std::string& name, torch::optim::Optimizer& optimizer,
                    const json& record) {
  const char* kind = optimizer_kind(optimizer);
  const std::string saved_kind = json_string(json_at(record, "kind", loader), "optimizer kind");
  if (kind == nullptr || saved_kind != kind) {
    loader.error(fmt::format("optimizer '{}' was saved as {}, but this run's is {}", name,
                             saved_kind, kind ? kind : "neither SGD nor Adam"));
  }
  const json& groups = json_at(record, "groups", loader);
  const auto& live_groups = optimizer.param_groups();
  if (!groups.is_array() || groups.size() != live_groups.size()) {
    loader.error(fmt::format("optimizer '{}' has {} parameter groups, the checkpoint {}", name,
                             live_groups.size(), groups.is_array() ? groups.size() : 0));
  }
  for (size_t g = 0; g < live_groups.size(); ++g) {
    const auto count = json_integer(json_at(groups[g], "params", loader), "params", 0, INT64_MAX);
    if (static_cast<size_t>(count) != live_groups[g].params().size()) {
      loader.error(fmt::format("optimizer '{}' group {} has {} parameters, the checkpoint {}", name,
                               g, live_groups[g].params().size(), count));
    }
  }
  const json& steps = json_at(record, "steps", loader);
  const auto params = params_in_order(optimizer);
  const bool sgd = saved_kind == "sgd";
  // The new per-parameter states, built now, installed by the action below.
  std::vector<std::pair<at::Tensor, std::unique_ptr<torch::optim::OptimizerParamState>>> states;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string what = fmt::format("{}'s parameter {}", name, i);
    const auto& p = params[i];
    if (sgd) {
      if (!loader.has(optimizer_key(name, i, "momentum_buffer"))) continue;
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(loader.take(optimizer_key(name, i, "momentum_buffer"), p, what).to(p.device(), false, true));
      states.emplace_back(p, std::move(state));
      continue;
    }
    const std::string index = std::to_string(i);
    if (!steps.contains(index)) continue;
    auto state = std::make_unique<torch::optim::AdamParamState>();
    using Step = std::decay_t<decltype(state->step())>;
    state->step(static_cast<Step>(json_integer(steps.at(index), what + " step", 0, INT64_MAX)));
    state->exp_avg(loader.take(optimizer_key(name, i, "exp_avg"), p, what).to(p.device(), false, true));
    state->exp_avg_sq(loader.take(optimizer_key(name, i, "exp_avg_sq"), p, what).to(p.device(), false, true));
    if (loader.has(optimizer_key(name, i, "max_exp_avg_sq"))) {
      state->max_exp_avg_sq(
          loader.take(optimizer_key(name, i, "max_exp_avg_sq"), p, what).to(p.device(), false, true));
    }
    states.emplace_back(p, std::move(state));
  }
  // Options are checked now (a missing or mistyped field is an error before anything changes).
  for (size_t g = 0; g < live_groups.size(); ++g) {
    auto copy = live_groups[g].options().clone();
    restore_options(*copy, groups[g]);
  }
  auto shared = std::make_shared<decltype(states)>(std::move(states));
  loader.then([&optimizer, shared, groups] {
    // Entries the file does not mention (say, momentum from a diverged attempt) must not survive.
    optimizer.state().clear();
    auto& map = optimizer.state();
    for (auto& [param, state] : *shared) map[state_key(map, param)] = std::move(state);
    for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
      restore_options(optimizer.param_groups()[g].options(), groups[g]);
    }
  });
}

// ---- The file ----------------------------------------------------------------------------------

std::string metadata_entry(const std::map<std::string, std::string>& metadata, const char* key,
                           const std::string& source) {
  const auto found = metadata.find(key);
  if (found == metadata.end()) {
    fail("{}: not a qimera checkpoint (its metadata has no '{}')", source, key);
  }
  return found->second;
}

// Refuses files in the older format by name, before the safetensors reader calls them garbage.
void check_magic(const fs::path& path) {
  const InputFile file(path);
  const std::string magic = file.read(0, static_cast<size_t>(std::min<uint64_t>(4, file.size())));
  if (magic == "PK\x03\x04") {
    fail("{}: a checkpoint in the older LibTorch archive format, which is no longer read (its "
         "reader runs code stored in the file), so the run can be neither resumed nor analysed: "
         "start it again (without --resume) to get a readable checkpoint",
         path.string());
  }
}

// Checks every checksum of the integrity record against the file; returns the parsed metadata.
json verify_integrity(const fs::path& path, const io::StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string source = path.string();
  if (metadata_entry(metadata, "format", source) != kCheckpointFormat) {
    fail("{}: a checkpoint of format '{}', expected '{}'", source,
         metadata_entry(metadata, "format", source), kCheckpointFormat);
  }
  const std::string text = metadata_entry(metadata, "checkpoint", source);
  const json integrity = parse_json(metadata_entry(metadata, "integrity", source), source + " integrity record");
  if (!integrity.is_object() || integrity.value("algorithm", json()) != Checksum::kAlgorithm ||
      !integrity.contains("metadata") || !integrity["metadata"].is_string() ||
      !integrity.contains("tensors") || !integrity["tensors"].is_object()) {
    fail("{}: the integrity record is damaged", source);
  }
  if (checksum_hex(text) != integrity["metadata"].get<std::string>()) {
    fail("{}: the checkpoint's metadata does not match its checksum: the file is damaged or was "
         "edited", source);
  }
  const json& sums = integrity["tensors"];
  if (sums.size() != tensors.size()) {
    fail("{}: the integrity record lists {} tensors, the file holds {}: the file is damaged or was "
         "edited", source, sums.size(), tensors.size());
  }
  for (const auto& [name, tensor] : tensors) {
    const auto found = sums.find(name);
    if (found == sums.end() || !found->is_string()) {
      fail("{}: tensor '{}' is not in the integrity record: the file is damaged or was edited",
           source, name);
    }
    if (tensor_checksum(name, tensor) != found->get<std::string>()) {
      fail("{}: tensor '{}' does not match its checksum: the file is damaged or was edited", source,
           name);
    }
  }
  return parse_json(text, source + " metadata");
}

}  // namespace

void save_checkpoint(const fs::path& path, const TrainingState& state, int64_t next_epoch,
                     const json& extra) {
  check_names(state);
  io::StateDict tensors;
  for (const auto& [name, module] : state.modules) {
    for (auto& [key, tensor] : io::state_dict_of(*module)) {
      tensors.emplace_back(module_key(name, key), tensor);
    }
  }
  json tensor_names = json::array();
  for (const auto& [name, tensor] : state.tensors) {
    require(tensor != nullptr && tensor->defined(), "checkpoint: tensor '{}' is not set", name);
    tensors.emplace_back(tensor_key(name), tensor->detach());
    tensor_names.push_back(name);
  }
  json optimizers = json::array();
  for (const auto& [name, optimizer] : state.optimizers) {
    optimizers.push_back(save_optimizer(name, *optimizer, tensors));
  }
  for (auto& [name, generator] : generators(state.device)) {
    tensors.emplace_back(rng_key(name), generator_state(generator));
  }
  json sums = json::object();
  for (auto& [name, tensor] : tensors) {
    tensor = tensor.detach().to(at::kCPU).contiguous();
    sums[name] = tensor_checksum(name, tensor);
  }
  const std::string text = json{{"format", kCheckpointFormat},
                                {"next_epoch", next_epoch},
                                {"extra", extra},
                                {"tensors", tensor_names},
                                {"optimizers", optimizers}}
                               .dump();
  const json integrity{{"algorithm", Checksum::kAlgorithm},
                       {"metadata", checksum_hex(text)},
                       {"tensors", sums}};
  io::write_safetensors(path, tensors,
                        {{"format", kCheckpointFormat},
                         {"checkpoint", text},
                         {"integrity", integrity.dump()}});
}

CheckpointInfo load_checkpoint(const fs::path& path, const TrainingState& state) {
  require(fs::exists(path), "no checkpoint at {} (nothing to resume)", path.string());
  check_names(state);
  check_magic(path);
  std::map<std::string, std::string> metadata;
  io::StateDict tensors = io::read_safetensors(path, &metadata);
  const json saved = verify_integrity(path, tensors, metadata);
  Loader loader(path, std::move(tensors));
  CheckpointInfo info;
  info.next_epoch = json_integer(json_at(saved, "next_epoch", loader), path.string() + ": next_epoch",
                                 0, INT64_MAX);
  info.extra = json_at(saved, "extra", loader);
  try {
    for (const auto& [name, module] : state.modules) plan_module(loader, name, *module);
    for (const auto& [name, tensor] : state.tensors) {
      loader.copy_into(*tensor, tensor_key(name), "the tensor " + name);
    }
    const json& optimizers = json_at(saved, "optimizers", loader);
    if (!optimizers.is_array() || optimizers.size() != state.optimizers.size()) {
      loader.error(fmt::format("holds {} optimizers, this run has {}",
                               optimizers.is_array() ? optimizers.size() : 0,
                               state.optimizers.size()));
    }
    for (size_t i = 0; i < state.optimizers.size(); ++i) {
      const auto& [name, optimizer] = state.optimizers[i];
      const std::string saved_name = json_string(json_at(optimizers[i], "name", loader), "name");
      if (saved_name != name) {
        loader.error(fmt::format("optimizer {} is named '{}', this run's '{}'", i, saved_name, name));
      }
      plan_optimizer(loader, name, *optimizer, optimizers[i]);
    }
    plan_rng(loader, state.device);
    loader.finish();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.rfind(path.string(), 0) == 0) throw;
    fail("{}: {}", path.string(), message);
  } catch (const c10::Error& e) {
    fail("{}: cannot restore this checkpoint: {}", path.string(), e.what_without_backtrace());
  }
  return info;
}

}  // namespace qimera::methods
