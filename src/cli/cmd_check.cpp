// qimera check: a quantized model against its full-precision source on images distilled from that
// source, for users without labelled data. Thin: methods/ distills, eval/ measures.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/table.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/eval/agreement.h"
#include "qimera/methods/zeroq.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <limits>

namespace qimera::cli {
namespace {
namespace fs = std::filesystem;

struct CheckOptions {
  CommonOptions common;
  std::vector<std::string> models;
  std::string teacher;
  std::string probe_kind = "class-balanced";
  methods::ZeroqOptions probe = methods::probe_options();
  int64_t batch_size = 256;
  std::string json;
};

// Every model must come from one full-precision source: the probe is distilled from it once.
fs::path source_of(const CheckOptions& o, const std::vector<deploy::QuantizedManifest>& manifests) {
  if (!o.teacher.empty()) return o.teacher;
  fs::path source;
  for (size_t i = 0; i < manifests.size(); ++i) {
    const auto& named = manifests[i].source_model;
    require(!named.empty() && fs::exists(named),
            "{}: names no full-precision source that exists here{}; give it with --teacher CARD",
            o.models[i], named.empty() ? "" : fmt::format(" ({})", named.string()));
    if (source.empty()) source = named;
    require(fs::equivalent(source, named),
            "{} comes from {}, {} from {}: check models of one source together (or give --teacher)",
            o.models.front(), source.string(), o.models[i], named.string());
  }
  return source;
}

std::vector<deploy::QuantizedManifest> read_manifests(const CheckOptions& o) {
  std::vector<deploy::QuantizedManifest> manifests;
  for (const auto& path : o.models) {
    require(fs::is_regular_file(path), "--model {}: no such file (expected a quantized.json from qimera quantize)", path);
    require(deploy::is_quantized_manifest(path),
            "--model {}: not a quantized model (expected a quantized.json from qimera quantize); "
            "check compares one with its full-precision source", path);
    manifests.push_back(deploy::read_quantized_manifest(path));
  }
  return manifests;
}

// Checked before the minutes of distillation.
void require_same_io(const CheckOptions& o, const std::vector<deploy::QuantizedManifest>& manifests,
                     const models::ModelSpec& source, const fs::path& source_file) {
  for (size_t i = 0; i < manifests.size(); ++i) {
    const auto& spec = manifests[i].spec;
    require(spec.num_classes == source.num_classes && spec.in_channels == source.in_channels &&
                spec.image_size == source.image_size,
            "--model {}: {} classes, {} x {} x {} images; its source {}: {} classes, {} x {} x {}",
            o.models[i], spec.num_classes, spec.in_channels, spec.image_size, spec.image_size,
            source_file.string(), source.num_classes, source.in_channels, source.image_size,
            source.image_size);
  }
}

std::string worst_class_text(const eval::Agreement& a) {
  const auto worst = a.worst_class();
  if (worst < 0) return "-";
  return fmt::format("{} ({:.1f}, {} images)", worst, a.class_top1(worst),
                     a.class_images[static_cast<size_t>(worst)]);
}

void run_check(const CheckOptions& o) {
  check_output_file(o.json, "--json");
  o.probe.validate();
  const auto manifests = read_manifests(o);
  const auto device = apply_common_options(o.common);
  const auto card = deploy::resolve_model(source_of(o, manifests).string());
  const auto source_file = card.weights.lexically_normal();
  auto teacher = deploy::load_classifier(card, device, true, o.common.nonfinite());
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);  // only the images learn
  const auto classes = teacher->spec().num_classes;
  require_same_io(o, manifests, teacher->spec(), source_file);
  spdlog::info("distilling {} x {} probe images from {} ({}, {} steps each)", o.probe.batches,
               o.probe.batch_size, source_file.string(), o.probe_kind, o.probe.iterations);
  const auto probe = methods::distill_probe(*teacher, o.probe, o.probe_kind == "class-balanced", device);
  // The source's logits once, for the probe's own check and every model's comparison.
  const eval::ProbeSet set{
      probe.images,
      eval::logits_of([&](const at::Tensor& x) { return teacher->forward(x); }, probe.images, o.batch_size),
      o.batch_size};
  nlohmann::json probe_json = {{"kind", o.probe_kind}, {"batches", o.probe.batches},
                               {"batch_size", o.probe.batch_size}, {"iterations", o.probe.iterations},
                               {"seed", o.common.seed}};
  if (probe.targets.defined()) {
    // How well the distillation did: images the source does not assign to their class still count
    // (classes are always the source's picks), but a low figure means a weak probe.
    const double picked = eval::top1(set.reference, probe.targets);
    probe_json["source_picks_target_percent"] = picked;
    fmt::print("the source picks the intended class for {:.1f}% of the probe images\n", picked);
  }
  Table table({"model", "agreement %", "worst class (agreement %)", "classes", "KL (nats)"});
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < manifests.size(); ++i) {
    auto quantized = deploy::load_quantized(manifests[i], device, o.common.nonfinite());
    const auto a = set.agreement_of([&](const at::Tensor& x) { return quantized->forward(x); });
    table.add_row({o.models[i], fmt::format("{:.2f}", a.top1), worst_class_text(a),
                   fmt::format("{} of {}", a.classes_seen(), classes), fmt::format("{:.4f}", a.kl)});
    auto entry = a.to_json();
    entry["model"] = o.models[i];
    entry["config"] = manifests[i].config.short_name();
    results.push_back(entry);
  }
  fmt::print("agreement with {} on {} images distilled from it ({}; classes as it picks them)\n{}",
             source_file.string(), probe.images.size(0), o.probe_kind, table.render());
  fmt::print("Agreement ranks quantized models as test top-1 does, but is not test top-1 (on the "
             "bundled teachers: Spearman 0.91-0.92 over 26 Fashion-MNIST models and 0.985 over 10 "
             "CIFAR-10 ones; every model under 50% test top-1 agreed on 24% of the images or fewer; "
             "docs/results.md). Evaluate on labelled data (qimera eval) wherever you have some.\n");
  if (!o.json.empty()) {
    write_json(o.json, {{"teacher", source_file.string()}, {"probe", probe_json}, {"results", results},
                        {"command", command_line()}});
    fmt::print("results: {}\n", o.json);
  }
}

}  // namespace

void add_check_command(CLI::App& app) {
  static CheckOptions o;
  auto* cmd = app.add_subcommand(
      "check",
      "Check quantized models without labelled data: how often each picks the class its "
      "full-precision source picks, on images distilled from that source (ZeroQ: noise optimized "
      "until every batch-norm layer sees its running statistics; by default also towards an equal "
      "number of images per class), overall and for the class where it agrees least, and the mean "
      "KL divergence between their outputs. Several models of one source share one probe set. "
      "A screen for broken models, not an accuracy; the distillation takes about 4 minutes of one "
      "CPU core for a ResNet-20 at the defaults.");
  add_common_options(*cmd, o.common);
  cmd->add_option("--model", o.models, "Quantized model(s): quantized.json from qimera quantize (repeatable)")
      ->required()
      ->take_all();
  cmd->add_option("--teacher", o.teacher,
                  "The full-precision model card (default: the one each quantized model names)");
  cmd->add_option("--probe", o.probe_kind,
                  "class-balanced: ZeroQ's batch-norm statistics loss plus the source's "
                  "cross-entropy towards an equal number of images per class; zeroq: the "
                  "statistics alone, as ZeroQ (the source then picks few classes)")
      ->check(CLI::IsMember({"class-balanced", "zeroq"}))
      ->capture_default_str();
  cmd->add_option("--zeroq-batches", o.probe.batches, "Probe batches to distill")->capture_default_str();
  cmd->add_option("--zeroq-batch-size", o.probe.batch_size, "Images per probe batch")->capture_default_str();
  cmd->add_option("--zeroq-iterations", o.probe.iterations, "Adam steps per probe batch (ZeroQ's 500)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "Evaluation batch size")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--json", o.json, "Also write the results to this JSON file");
  cmd->callback([] { run_check(o); });
}

}  // namespace qimera::cli
