#include "qimera/methods/method.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/methods/data_free.h"
#include "qimera/methods/registry.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace qimera::methods {

const std::vector<MethodInfo>& all_methods() {
  static const std::vector<MethodInfo> methods = {
      ptq_method(),         zeroq_method(),       gdfq_method(),
      gdfq_mixup_method(),  gdfq_cutmix_method(), zaq_method(),
      qimera_method(),      qimera_zaq_method(),
  };
  return methods;
}

std::unique_ptr<DataFreeTrainer> Method::make_trainer(models::Classifier, c10::Device) const {
  return nullptr;
}

const MethodInfo& find_method(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& m : all_methods()) {
    if (m.name == name) return m;
    names.push_back(m.name);
  }
  fail("unknown method '{}': expected one of {}", name, fmt::join(names, ", "));
}

const PresetInfo& find_preset(const MethodInfo& method, const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : method.presets) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  fail("method '{}' has no preset '{}' (its presets: {})", method.name, name,
       names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", ")));
}

namespace {

std::vector<std::string> methods_with_option(const std::string& name) {
  std::vector<std::string> out;
  for (const auto& m : all_methods()) {
    auto method = m.make();
    const auto names = option_names([&](OptionVisitor& v) { method->describe(v); });
    if (std::find(names.begin(), names.end(), name) != names.end()) out.push_back(m.name);
  }
  return out;
}

}  // namespace

std::unique_ptr<Method> configure_method(const MethodInfo& info, const std::string& preset,
                                         const GivenOptions& given, const nlohmann::json* saved) {
  auto method = info.make();
  const Describe describe = [&](OptionVisitor& v) { method->describe(v); };
  if (saved) apply_json(describe, *saved, "the saved run's config.json");
  if (!preset.empty()) {
    const auto& p = find_preset(info, preset);
    apply_json(describe, p.options, "preset " + p.name);
  }
  const auto names = option_names(describe);
  for (const auto& [name, texts] : given) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      const auto owners = methods_with_option(name);
      fail("{} does not apply to --method {}{}", flag_of(name), info.name,
           owners.empty() ? std::string()
                          : fmt::format(" (it applies to: {})", fmt::join(owners, ", ")));
    }
    set_from_text(describe, name, texts);
  }
  method->validate();
  if (saved) {
    std::vector<OptionDifference> fixed, changed;
    for (auto& d : diff_options(describe, *saved, options_to_json(describe))) {
      (d.resumable ? changed : fixed).push_back(std::move(d));
    }
    require(fixed.empty(),
            "--resume: these options differ from the run being resumed and cannot change: {}. "
            "Resume with the run's own options (omit them to keep the saved values), or start a "
            "new run in another --out",
            describe_differences(fixed));
    if (!changed.empty()) spdlog::info("resuming with changed options: {}", describe_differences(changed));
  }
  return method;
}

nlohmann::json saved_run_config(const RunFolder& folder) {
  require(std::filesystem::exists(folder.config()),
          "--resume: there is nothing to resume in {} (no config.json)", folder.dir.string());
  const auto config = read_json(folder.config());
  require(config.is_object() && config.contains("method") && config.at("method").is_string() &&
              config.contains("options") && config.at("options").is_object(),
          "{}: not the configuration of a qimera quantize run", folder.config().string());
  return config;
}

MethodOutcome run_method(const MethodInfo& info, Method& method, const MethodContext& context,
                         const nlohmann::json& extra) {
  nlohmann::json config = extra;
  config["method"] = info.name;
  config["options"] = options_to_json([&](OptionVisitor& v) { method.describe(v); });
  config["teacher"] = context.teacher->spec().to_json();
  config["device"] = context.device.str();
  config["seed"] = context.seed;
  require(!context.resume || method.trains(),
          "--resume: --method {} does not train in epochs; there is nothing to resume (run it again "
          "in a new --out)",
          info.name);
  open_run(context.folder, config, context.resume);
  return method.run(context);
}

}  // namespace qimera::methods
