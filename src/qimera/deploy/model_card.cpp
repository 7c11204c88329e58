#include "qimera/deploy/model_card.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/zoo.h"

#include <spdlog/spdlog.h>

namespace qimera::deploy {
namespace fs = std::filesystem;

namespace {
constexpr const char* kModelCardFormat = "qimera-model/1";
}

ModelCard read_model_card(const fs::path& path) {
  const auto j = read_json(path);
  try {
    require(j.is_object() && j.contains("format") && j["format"] == kModelCardFormat,
            "{}: not a qimera model card (\"format\" must be \"{}\", found {})", path.string(),
            kModelCardFormat,
            j.is_object() && j.contains("format") ? json_excerpt(j["format"]) : "none");
    const std::string what = "model card";
    ModelCard card;
    card.spec = models::ModelSpec::from_json(json_field(j, "model", what));
    const fs::path weights = json_string(json_field(j, "weights", what), "\"weights\"");
    card.weights = weights.is_absolute() ? weights : path.parent_path() / weights;
    card.preprocess = data::preprocess_from_json(json_field(j, "preprocess", what));
    if (j.contains("class_names")) {
      const auto& names = j["class_names"];
      require(names.is_array(), "\"class_names\" is {}, expected a list of names",
              json_excerpt(names));
      for (size_t i = 0; i < names.size(); ++i) {
        card.class_names.push_back(json_string(names[i], fmt::format("class_names[{}]", i)));
      }
    }
    if (j.contains("provenance")) card.provenance = j["provenance"];
    require(card.class_names.empty() ||
                static_cast<int64_t>(card.class_names.size()) == card.spec.num_classes,
            "{} class names for {} classes", card.class_names.size(), card.spec.num_classes);
    return card;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed model card: {}", path.string(), e.what());
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(path.string()) != std::string::npos) throw;
    fail("{}: {}", path.string(), what);
  }
}

void write_model_card(const fs::path& path, const ModelCard& card) {
  std::error_code ec;
  auto weights = fs::relative(fs::absolute(card.weights), fs::absolute(path).parent_path(), ec);
  if (ec || weights.empty()) weights = fs::absolute(card.weights);
  nlohmann::json j{{"format", kModelCardFormat},
                   {"model", card.spec.to_json()},
                   {"weights", weights.string()},
                   {"preprocess", data::preprocess_to_json(card.preprocess)},
                   {"class_names", card.class_names},
                   {"provenance", card.provenance}};
  write_json(path, j);
}

ModelCard preset_card(const std::string& preset, const fs::path& weights) {
  ModelCard card;
  card.spec = models::preset_spec(preset);
  card.weights = weights;
  const std::string data_preset = preset == "resnet20_cifar10"    ? "cifar10"
                                  : preset == "resnet20_cifar100" ? "cifar100"
                                                                  : "imagenet";
  card.preprocess = data::preprocess_preset(data_preset);
  card.provenance = {{"source", "pytorchcv preset " + preset}};
  return card;
}

ModelCard resolve_model(const std::string& model, const fs::path& weights) {
  const bool is_card = fs::path(model).extension() == ".json";
  if (is_card) {
    auto card = read_model_card(model);
    if (!weights.empty()) card.weights = weights;
    return card;
  }
  require(!weights.empty(),
          "model '{}' is a preset name: give its weights with --weights (a .pth/.pt state dict or "
          ".safetensors), or pass a model card (.json)",
          model);
  return preset_card(model, weights);
}

models::Classifier load_classifier(const ModelCard& card, c10::Device device, bool strict,
                                   io::NonFinite nonfinite) {
  auto model = models::build_model(card.spec);
  const auto state = io::read_state_dict(card.weights);
  io::check_finite(state, card.weights.string(), nonfinite);
  io::LoadOptions options;
  options.strict = strict;
  io::LoadReport report;
  try {
    report = io::load_state_dict(*model, state, options);
  } catch (const Error& e) {
    fail("{}: {}", card.weights.string(), e.what());  // the message names the model, not the file
  }
  spdlog::debug("loaded {} tensors from {}", report.loaded.size(), card.weights.string());
  model->to(device);
  model->eval();
  return model;
}

}  // namespace qimera::deploy
