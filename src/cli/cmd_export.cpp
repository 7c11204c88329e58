// qimera export: a quantized model (or a full-precision one) as a file other runtimes read.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/onnx_export.h"
#include "qimera/deploy/quantized_model.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>

namespace qimera::cli {
namespace fs = std::filesystem;
namespace {

struct ExportOptions {
  CommonOptions common;
  std::string model;
  std::string format = "onnx";
  std::string out;
  bool int8_containers = false;
};

// Provenance for the file's metadata: what it was made from.
nlohmann::json metadata_for(const fs::path& model_file) {
  nlohmann::json meta{{"source", fs::absolute(model_file).string()}, {"command", command_line()}};
  const auto j = read_json(model_file);
  for (const char* key : {"quantization", "provenance", "layers"}) {
    if (j.contains(key)) meta[key] = j[key];
  }
  return meta;
}

fs::path default_output(const fs::path& model_file, const ExportOptions& o) {
  auto out = model_file;
  return out.replace_extension(o.int8_containers ? ".int8.onnx" : ".onnx");
}

std::string count_by_container(const std::vector<deploy::OnnxTensorInfo>& tensors, const std::string& kind) {
  std::map<std::string, int> counts;
  int clipped = 0, total = 0;
  for (const auto& t : tensors) {
    if (t.kind != kind) continue;
    ++counts[t.container];
    clipped += t.clipped;
    ++total;
  }
  if (total == 0) return "none quantized";
  std::vector<std::string> parts;
  for (const auto& [container, n] : counts) parts.push_back(fmt::format("{} {}", n, container));
  return fmt::format("{}{}", fmt::join(parts, ", "),
                     clipped ? fmt::format(" ({} clamped to their n-bit range before QuantizeLinear)", clipped) : "");
}

void run_export(const ExportOptions& o) {
  apply_common_options(o.common);
  require(deploy::onnx_export_available(),
          "this qimera was built without ONNX support: install libonnx-dev (scripts/install-deps.sh) "
          "and rebuild");
  const auto model_file = deploy::resolve_model_file(o.model);
  const auto graph = deploy::lower_file(model_file);
  const fs::path out = o.out.empty() ? default_output(model_file, o) : fs::path(o.out);
  require(out != model_file, "--out {} would overwrite the model file", out.string());
  deploy::OnnxOptions options;
  options.int8_containers = o.int8_containers;
  const auto summary = deploy::export_onnx(graph, out, options, metadata_for(model_file));
  const auto float_bytes = static_cast<int64_t>(
      deploy::onnx_model_bytes(deploy::strip_quantization(graph), {}, nlohmann::json::object()).size());
  fmt::print("ONNX (opset 21, QuantizeLinear/DequantizeLinear) of {}\n", graph.spec.describe());
  fmt::print("  file: {} ({} bytes, {:.1f}% of the same graph in float32: {} bytes)\n", out.string(),
             summary.file_bytes, 100.0 * static_cast<double>(summary.file_bytes) / static_cast<double>(float_bytes),
             float_bytes);
  fmt::print("  weights (per output channel): {}\n", count_by_container(summary.tensors, "weight"));
  fmt::print("  activations (per tensor): {}\n", count_by_container(summary.tensors, "activation"));
  fmt::print("  batch norm kept (float BatchNormalization after each Conv); input: uint8 pixels "
             "[N, {}, {}, {}], normalization in the graph\n",
             graph.spec.in_channels, graph.spec.image_size, graph.spec.image_size);
}

}  // namespace

void add_export_command(CLI::App& app) {
  static ExportOptions o;
  auto* cmd = app.add_subcommand(
      "export",
      "Write a model in a format other runtimes read. --format onnx: a QDQ graph (QuantizeLinear / "
      "DequantizeLinear with the learned scales and zero points; weights stored as integers, per "
      "output channel; activations per tensor; INT4 for 4 bits and below, INT8 for 5 to 8), batch "
      "norm kept, normalization in the graph (the input is uint8 pixels). Checked in ONNX Runtime.");
  add_common_options(*cmd, o.common);
  cmd->add_option("model", o.model,
                  "A run folder of 'qimera quantize' (its quantized.json), a quantized.json, or a "
                  "full-precision model card (exported in float)")
      ->required();
  cmd->add_option("--format", o.format, "Output format")
      ->check(CLI::IsMember({"onnx"}))
      ->capture_default_str();
  cmd->add_option("--out", o.out,
                  "Output file (default: next to the model file, quantized.onnx, or quantized.int8.onnx "
                  "with --int8-containers)");
  cmd->add_flag("--int8-containers", o.int8_containers,
                "Store 2- to 4-bit values in INT8 instead of INT4, for runtimes without INT4 (a clamp "
                "keeps each activation on its n-bit range)");
  cmd->callback([] { run_export(o); });
}

}  // namespace qimera::cli
