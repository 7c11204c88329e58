#include "qimera/analysis/run_models.h"

#include "qimera/core/error.h"
#include "qimera/deploy/model_card.h"
#include "qimera/methods/checkpoint.h"
#include "qimera/methods/data_free.h"
#include "qimera/methods/method.h"

#include <ATen/ATen.h>

namespace qimera::analysis {
namespace fs = std::filesystem;

bool RunModels::superposable() const {
  return generator->options().input == generator::LatentInput::Embedding;
}

namespace {

nlohmann::json run_config(const fs::path& dir) {
  const methods::RunFolder folder{dir};
  require(fs::exists(folder.config()), "{} is not a run folder: it has no config.json", dir.string());
  return methods::saved_run_config(folder);
}

}  // namespace

deploy::ModelCard run_teacher_card(const fs::path& dir, const std::string& model) {
  const auto config = run_config(dir);
  const methods::RunFolder folder{dir};
  std::string model_path = model;
  if (model_path.empty() && config.contains("provenance") && config.at("provenance").is_object()) {
    model_path = config.at("provenance").value("model", std::string());
  }
  require(!model_path.empty(), "{} does not record its teacher's model card: pass --model",
          folder.config().string());
  const auto card = deploy::resolve_model(model_path);
  if (config.contains("teacher")) {
    require(card.spec.to_json() == config.at("teacher"),
            "{} is not the teacher of {}: the run recorded {}, the card holds {}", model_path,
            dir.string(), config.at("teacher").dump(), card.spec.to_json().dump());
  }
  return card;
}

RunModels load_run_models(const fs::path& dir, const std::string& model, c10::Device device) {
  const methods::RunFolder folder{dir};
  const auto config = run_config(dir);
  const std::string method_name = config.at("method");
  const auto& info = methods::find_method(method_name);
  auto method = methods::configure_method(info, "", {}, &config.at("options"));
  const auto card = run_teacher_card(dir, model);
  auto teacher = deploy::load_classifier(card, device);
  auto trainer = method->make_trainer(teacher, device);
  require(trainer != nullptr,
          "{} holds a {} run, which has no generator to analyse (gdfq, gdfq-mixup, gdfq-cutmix, "
          "qimera, zaq and qimera-zaq have one)",
          dir.string(), method_name);
  require(fs::exists(folder.checkpoint()),
          "{} has no checkpoint.pt: the run ended before its first epoch", dir.string());
  methods::load_checkpoint(folder.checkpoint(), trainer->state());
  RunModels r;
  r.method = method_name;
  r.teacher = teacher;
  r.generator = trainer->generator();
  r.preprocess = card.preprocess;
  r.device = device;
  return r;
}

at::Tensor to_pixels(const at::Tensor& images, const data::Preprocess& preprocess) {
  auto x = images.detach().to(at::kCPU, at::kFloat);
  const int64_t channels = x.size(1);
  auto per_channel = [&](const std::vector<float>& v, float fallback) {
    std::vector<float> values(channels, fallback);
    for (int64_t c = 0; c < channels; ++c) {
      if (!v.empty()) values[c] = v.size() == 1 ? v[0] : v.at(c);
    }
    return at::tensor(values).reshape({1, channels, 1, 1});
  };
  x = x * per_channel(preprocess.std, 1.0f) + per_channel(preprocess.mean, 0.0f);
  return (x.clamp(0, 1) * 255).round().to(at::kByte);
}

}  // namespace qimera::analysis
