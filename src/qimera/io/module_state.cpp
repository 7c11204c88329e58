// state_dict_of and load_state_dict (declared in state_dict.h): a module's tensors by PyTorch name.
#include "qimera/core/error.h"
#include "qimera/io/state_dict.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <string>
#include <unordered_map>

namespace qimera::io {
namespace {

// The module's own tensors (not detached: loading writes into them), in state_dict() order.
void collect(const torch::nn::Module& module, const std::string& prefix, StateDict& out) {
  for (const auto& item : module.named_parameters(/*recurse=*/false)) {
    if (item.value().defined()) out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/false)) {
    if (item.value().defined()) out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& child : module.named_children()) {
    collect(*child.value(), prefix + child.key() + ".", out);
  }
}

StateDict module_tensors(const torch::nn::Module& module) {
  StateDict tensors;
  collect(module, "", tensors);
  return tensors;
}

constexpr size_t kListedKeys = 20;

// "3 missing keys: a, b, c" with at most kListedKeys names.
std::string describe_keys(const std::vector<std::string>& keys, const char* what) {
  const size_t shown = std::min(keys.size(), kListedKeys);
  std::string text = fmt::format("{} {} key{}: {}", keys.size(), what, keys.size() == 1 ? "" : "s",
                                 fmt::join(keys.begin(), keys.begin() + shown, ", "));
  if (keys.size() > shown) text += fmt::format(", ... and {} more", keys.size() - shown);
  return text;
}

bool all_start_with(const StateDict& state, const std::string& prefix) {
  return std::all_of(state.begin(), state.end(),
                     [&](const auto& item) { return item.first.rfind(prefix, 0) == 0; });
}

bool any_starts_with(const StateDict& state, const std::string& prefix) {
  return std::any_of(state.begin(), state.end(),
                     [&](const auto& item) { return item.first.rfind(prefix, 0) == 0; });
}

// The state dict's entries under the names the module would use (without a DataParallel prefix).
struct Source {
  std::vector<std::pair<std::string, const at::Tensor*>> entries;  // in the state dict's order
  std::unordered_map<std::string, size_t> positions;
};

// Duplicate keys are an error because one of the two values would be silently dropped.
Source index_source(const StateDict& state, const StateDict& targets, const LoadOptions& options) {
  const std::string prefix = "module.";
  const bool strip = options.strip_data_parallel_prefix && !state.empty() &&
                     all_start_with(state, prefix) && !any_starts_with(targets, prefix);
  if (strip) spdlog::info("state dict keys start with 'module.' (DataParallel); stripping it");
  Source source;
  for (const auto& [key, tensor] : state) {
    std::string name = strip ? key.substr(prefix.size()) : key;
    require(tensor.defined(), "state dict entry '{}' holds no tensor", key);
    require(source.positions.emplace(name, source.entries.size()).second,
            "state dict has the key '{}' twice", key);
    source.entries.emplace_back(std::move(name), &tensor);
  }
  return source;
}

struct Plan {
  std::vector<std::pair<at::Tensor, const at::Tensor*>> copies;
  LoadReport report;
  std::vector<std::string> mismatches;  // wrong shapes, integers for floating-point tensors
};

Plan plan_load(const StateDict& targets, const StateDict& state, const LoadOptions& options) {
  const Source source = index_source(state, targets, options);
  std::vector<bool> used(source.entries.size(), false);
  Plan plan;
  for (const auto& [name, target] : targets) {
    auto found = source.positions.find(name);
    if (found == source.positions.end()) {
      plan.report.missing.push_back(name);
      continue;
    }
    used[found->second] = true;
    const at::Tensor& value = *source.entries[found->second].second;
    if (value.sizes() != target.sizes()) {
      plan.mismatches.push_back(fmt::format("wrong shape for {}: shape [{}] in the state dict, [{}] "
                                            "in the model", name, fmt::join(value.sizes(), ", "),
                                            fmt::join(target.sizes(), ", ")));
    } else if (at::isFloatingType(target.scalar_type()) && !at::isFloatingType(value.scalar_type())) {
      // copy_ would turn float bytes labelled int32 into integers near 1e9 without a word.
      plan.mismatches.push_back(fmt::format("wrong dtype for {}: {} in the state dict, {} in the "
                                            "model (integers are not converted into weights)",
                                            name, value.scalar_type(), target.scalar_type()));
    }
    plan.copies.emplace_back(target, &value);
    plan.report.loaded.push_back(name);
  }
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) plan.report.unexpected.push_back(source.entries[i].first);
  }
  return plan;
}

std::string describe_problems(const torch::nn::Module& module, const Plan& plan, bool strict) {
  std::string text = fmt::format("cannot load the state dict into {}:", module.name());
  if (strict && !plan.report.missing.empty()) {
    text += "\n  " + describe_keys(plan.report.missing, "missing");
  }
  if (strict && !plan.report.unexpected.empty()) {
    text += "\n  " + describe_keys(plan.report.unexpected, "unexpected");
  }
  const size_t shown = std::min(plan.mismatches.size(), kListedKeys);
  for (size_t i = 0; i < shown; ++i) text += "\n  " + plan.mismatches[i];
  if (plan.mismatches.size() > shown) {
    text += fmt::format("\n  ... and {} more wrong shapes or dtypes", plan.mismatches.size() - shown);
  }
  return text;
}

}  // namespace

StateDict state_dict_of(const torch::nn::Module& module) {
  StateDict state = module_tensors(module);
  for (auto& item : state) item.second = item.second.detach();
  return state;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state,
                           const LoadOptions& options) {
  Plan plan = plan_load(module_tensors(module), state, options);
  const bool key_problems = !plan.report.missing.empty() || !plan.report.unexpected.empty();
  if (!plan.mismatches.empty() || (options.strict && key_problems)) {
    throw Error(describe_problems(module, plan, options.strict));
  }
  if (!plan.report.missing.empty()) {
    spdlog::warn("loading into {}: {}", module.name(),
                 describe_keys(plan.report.missing, "missing"));
  }
  if (!plan.report.unexpected.empty()) {
    spdlog::warn("loading into {}: {}", module.name(),
                 describe_keys(plan.report.unexpected, "unexpected"));
  }
  at::NoGradGuard no_grad;
  for (auto& [target, value] : plan.copies) target.copy_(*value);
  return std::move(plan.report);
}

}  // namespace qimera::io
