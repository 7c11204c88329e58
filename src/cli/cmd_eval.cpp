// qimera eval: top-1 / top-5 and throughput of a model (full-precision or quantized) on a data set.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/table.h"
#include "qimera/data/loader.h"
#include "qimera/data/spread_subset.h"
#include "qimera/deploy/int8_engine.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/eval/evaluate.h"
#include "qimera/eval/input_check.h"
#include "qimera/methods/ptq.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <limits>
#include <sstream>

namespace qimera::cli {
namespace {

struct EvalOptions {
  CommonOptions common;
  std::string model;
  std::string weights;
  std::string data = "fashion-mnist:test";
  std::string preprocess;
  int64_t batch_size = 256;
  int64_t limit = 0;
  std::string json;
  std::string engine = "fp";
  std::string calib_data = "noise";
  int64_t calib_batches = 8;
  int64_t calib_batch_size = 64;
  std::vector<std::string> act_ranges_from;  // FILE or FILE=GLOB[,GLOB...]
};

struct Candidate {
  std::string name;
  std::function<at::Tensor(const at::Tensor&)> forward;
  data::Preprocess preprocess;
  models::ModelSpec spec;
  nlohmann::json details = nlohmann::json::object();
};

Candidate candidate(const std::string& name, models::Classifier model, const data::Preprocess& preprocess) {
  const auto spec = model->spec();
  return {name, [model](const at::Tensor& x) { return model->forward(x); }, preprocess, spec};
}

// Normalized batches for the int8 engine's calibrated grids: N(0,1) noise, or batches of a data set
// (shuffled with --seed).
std::vector<at::Tensor> calibration_batches(const EvalOptions& o, const deploy::QuantizedManifest& m) {
  std::vector<at::Tensor> batches;
  if (o.calib_data == "noise") {
    auto source = methods::gaussian_batches(m.spec, o.calib_batch_size, c10::kCPU, o.common.seed + 1);
    for (int64_t i = 0; i < o.calib_batches; ++i) batches.push_back(source());
    return batches;
  }
  data::LoaderOptions loading;
  loading.batch_size = o.calib_batch_size;
  loading.shuffle = true;
  loading.seed = o.common.seed;
  loading.workers = o.common.workers;
  data::BatchLoader loader(open_data(o.calib_data, o.common), m.preprocess, loading);
  while (static_cast<int64_t>(batches.size()) < o.calib_batches) {
    auto batch = loader.next();
    if (!batch) break;
    batches.push_back(batch->images);
  }
  require(!batches.empty(), "--calib-data {} gave no batches", o.calib_data);
  return batches;
}

Candidate int8_candidate(const EvalOptions& o, const deploy::QuantizedManifest& manifest) {
  auto engine = std::make_shared<deploy::Int8Model>(deploy::lower_quantized(manifest),
                                                    calibration_batches(o, manifest));
  spdlog::info("{}", engine->report().describe());
  Candidate c{fmt::format("int8 engine {}", manifest.config.short_name()),
              [engine](const at::Tensor& x) { return engine->forward(x); }, manifest.preprocess,
              manifest.spec, engine->report().to_json()};
  c.details["calibration"] = fmt::format("{} x {} {}", o.calib_batches, o.calib_batch_size,
                                         o.calib_data == "noise" ? "N(0,1) noise" : o.calib_data);
  return c;
}

// --act-ranges-from FILE[=GLOB,...], in order (a later one wins where both name a layer). Returns
// what each took, for the table and the JSON.
nlohmann::json adopt_ranges(models::ClassifierImpl& model, const std::vector<std::string>& specs) {
  nlohmann::json adopted = nlohmann::json::array();
  for (const auto& spec : specs) {
    std::string file = spec;
    std::vector<std::string> patterns;
    const auto eq = spec.rfind('=');
    if (eq != std::string::npos && !std::filesystem::exists(spec)) {
      file = spec.substr(0, eq);
      std::stringstream list(spec.substr(eq + 1));
      for (std::string p; std::getline(list, p, ',');) {
        if (!p.empty()) patterns.push_back(p);
      }
      require(!patterns.empty(), "--act-ranges-from {}: no layer pattern after '='", spec);
    }
    require(std::filesystem::is_regular_file(file),
            "--act-ranges-from: {} does not exist (expected a quantized.json from qimera quantize)",
            file);
    const auto layers =
        deploy::adopt_act_ranges(model, deploy::read_quantized_manifest(file), file, patterns);
    adopted.push_back({{"file", file}, {"patterns", patterns}, {"layers", layers}});
  }
  return adopted;
}

// A quantized manifest brings its full-precision source along (when it names one), so that both
// are evaluated side by side.
std::vector<Candidate> load_candidates(const EvalOptions& o, c10::Device device) {
  std::vector<Candidate> out;
  if (deploy::is_quantized_manifest(o.model)) {
    const auto manifest = deploy::read_quantized_manifest(o.model);
    if (!manifest.source_model.empty() && std::filesystem::exists(manifest.source_model)) {
      const auto card = deploy::read_model_card(manifest.source_model);
      out.push_back(candidate("full precision",
                              deploy::load_classifier(card, device, true, o.common.nonfinite()),
                              card.preprocess));
    } else {
      spdlog::warn("the quantized model names no full-precision source that exists here; "
                   "evaluating it alone");
    }
    auto quantized = deploy::load_quantized(manifest, device, o.common.nonfinite());
    std::string name = "quantized " + manifest.config.short_name();
    const auto adopted = adopt_ranges(*quantized, o.act_ranges_from);
    for (const auto& a : adopted) {
      // The run folder and file name say whose ranges they are; the JSON keeps the whole path.
      const std::filesystem::path file = a["file"].get<std::string>();
      name += fmt::format(", {} activation ranges from {}", a["layers"].size(),
                          (file.parent_path().filename() / file.filename()).string());
    }
    out.push_back(candidate(name, quantized, manifest.preprocess));
    if (!adopted.empty()) out.back().details["act_ranges_from"] = adopted;
    if (o.engine == "int8") out.push_back(int8_candidate(o, manifest));
    return out;
  }
  require(o.engine == "fp", "--engine int8 needs a quantized model (a quantized.json from qimera quantize)");
  require(o.act_ranges_from.empty(),
          "--act-ranges-from needs a quantized model (a quantized.json from qimera quantize)");
  const auto card = deploy::resolve_model(o.model, o.weights);
  out.push_back(candidate("full precision", deploy::load_classifier(card, device, true, o.common.nonfinite()),
                         card.preprocess));
  return out;
}

void run_eval(const EvalOptions& o) {
  check_output_file(o.json, "--json");
  const auto device = apply_common_options(o.common);
  require(o.engine == "fp" || device.is_cpu(), "--engine int8 runs on the CPU: add --device cpu");
  require(o.engine == "fp" || o.act_ranges_from.empty(),
          "--act-ranges-from changes the fake-quantized model only; use it with --engine fp");
  auto dataset = open_data(o.data, o.common);
  if (o.limit > 0) dataset = data::spread_subset(dataset, o.limit);
  Table table({"model", "top-1 %", "top-5 %", "images/s"});
  nlohmann::json results = nlohmann::json::array();
  for (auto& candidate : load_candidates(o, device)) {
    const auto preprocess = o.preprocess.empty() ? candidate.preprocess : data::preprocess_preset(o.preprocess);
    require(candidate.spec.num_classes >= dataset->num_classes(),
            "the model has {} classes but the data set has {}", candidate.spec.num_classes,
            dataset->num_classes());
    eval::require_model_input(*dataset, preprocess, candidate.spec);
    data::LoaderOptions loading;
    loading.batch_size = o.batch_size;
    loading.workers = o.common.workers;
    loading.device = device;
    data::BatchLoader loader(dataset, preprocess, loading);
    const auto acc = eval::evaluate(candidate.forward, loader, candidate.name);
    table.add_row({candidate.name, fmt::format("{:.2f}", acc.top1), fmt::format("{:.2f}", acc.top5),
                   fmt::format("{:.0f}", acc.images_per_second())});
    auto entry = acc.to_json();
    entry["model"] = candidate.name;
    if (candidate.details.contains("act_ranges_from")) {
      entry["act_ranges_from"] = candidate.details["act_ranges_from"];
    } else if (!candidate.details.empty()) {
      entry["engine"] = candidate.details;
    }
    results.push_back(entry);
  }
  fmt::print("{} ({} images)\n{}", dataset->description(), results.front()["samples"].get<int64_t>(),
             table.render());
  if (!o.json.empty()) {
    write_json(o.json, {{"data", dataset->description()}, {"model", o.model}, {"results", results},
                        {"command", command_line()}});
    fmt::print("results: {}\n", o.json);
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  static EvalOptions o;
  auto* cmd = app.add_subcommand(
      "eval",
      "Top-1 / top-5 accuracy and images/s of a model on a data set. A quantized model's manifest "
      "is evaluated side by side with the full-precision model it came from.");
  add_common_options(*cmd, o.common);
  cmd->add_option("--model", o.model,
                  "Model card (.json from qimera train), quantized-model manifest (.json from "
                  "qimera quantize) or pytorchcv preset name (resnet20_cifar10, resnet20_cifar100, "
                  "resnet18, resnet50, mobilenetv2_w1) with --weights")
      ->required();
  cmd->add_option("--weights", o.weights,
                  "State dict (.pth/.pt from torch.save, or .safetensors); overrides a card's");
  cmd->add_option("--data", o.data,
                  "Data set: mnist[:train|:test], fashion-mnist[:train|:test], cifar10:DIR[:split], "
                  "cifar100:DIR[:split], folder:DIR, idx:IMAGES,LABELS")
      ->capture_default_str();
  cmd->add_option("--preprocess", o.preprocess, "Override the model's preprocessing preset");
  cmd->add_option("--batch-size", o.batch_size, "Evaluation batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--limit", o.limit, "Evaluate N images spread evenly over the data set (every (size/N)-th, so every class of a class-ordered folder counts; 0: all)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  cmd->add_option("--json", o.json, "Also write the results to this JSON file");
  cmd->add_option("--engine", o.engine,
                  "fp: the fake-quantized model in float (exact reference); int8: also run a quantized "
                  "model on LibTorch's integer operators (oneDNN, CPU; batch norm folded), side by side")
      ->check(CLI::IsMember({"fp", "int8"}))
      ->capture_default_str();
  cmd->add_option("--calib-data", o.calib_data,
                  "int8: data for the 8-bit grids of tensors the quantized model keeps in float "
                  "(residual branches), a data set spec or 'noise' for N(0,1)")
      ->capture_default_str();
  cmd->add_option("--calib-batches", o.calib_batches, "int8: calibration batches")->capture_default_str();
  cmd->add_option("--calib-batch-size", o.calib_batch_size, "int8: calibration batch size")
      ->capture_default_str();
  cmd->add_option("--act-ranges-from", o.act_ranges_from,
                  "A diagnostic: evaluate the quantized --model with the activation ranges of "
                  "another quantized model of the same architecture: FILE (its quantized.json, "
                  "every range) or FILE=GLOB[,GLOB...] (the activations whose names match, e.g. "
                  "'q.json=features.stage1.*'); repeatable, a later one wins. Tells how much of two "
                  "runs' accuracy gap their activation ranges explain")
      ->take_all();
  cmd->callback([] { run_eval(o); });
}

}  // namespace qimera::cli
