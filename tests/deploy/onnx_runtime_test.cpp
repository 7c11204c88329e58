// The exported graphs in a real runtime: ONNX Runtime (npm onnxruntime-node) against the
// fake-quantized model, for every architecture, in INT4 and INT8 containers and at 8 bits.
// Skipped when node / onnxruntime-node are missing (scripts/install-onnxruntime.sh), required by
// scripts/test.sh (QIMERA_REQUIRE_ONNXRUNTIME=1).
#include "deploy/support.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/onnx_export.h"
#include "qimera/deploy/quantized_model.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::deploy {
namespace {

using qimera::testing::TempDir;
using namespace deploy::support;

struct Setting {
  const char* label;
  int weight_bits, act_bits;
  bool int8_containers;
};

constexpr Setting kSettings[] = {
    {"4w4a int4", 4, 4, false}, {"4w4a int8", 4, 4, true}, {"8w8a", 8, 8, false}, {"3w3a int4", 3, 3, false}};

// The ImageNet ResNets are big (their files 6 to 26 MB): they run the two main settings; container
// variants and clamps are covered by the small models (and ReLU6 by MobileNetV2).
std::vector<Setting> settings_for(const std::string& model) {
  if (model == "resnet18" || model == "resnet50") return {kSettings[0], kSettings[2]};
  if (model == "mobilenetv2_w1") return {kSettings[0], kSettings[1], kSettings[2]};
  return {std::begin(kSettings), std::end(kSettings)};
}

class OnnxRuntime : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxRuntime, LogitsMatchTheFakeQuantizedModel) {
  QIMERA_REQUIRE_ORT();
  const auto m = test_model(GetParam());
  TempDir dir;
  const auto images = random_images(*m.model, 16, 42);
  for (const auto& s : settings_for(GetParam())) {
    const auto manifest = read_quantized_manifest(quantized_export(m, config_of(s.weight_bits, s.act_bits)));
    const auto graph = lower_quantized(manifest);
    const auto file = dir / fmt::format("{}-{}.onnx", s.weight_bits, s.int8_containers ? "int8" : "native");
    export_onnx(graph, file, OnnxOptions{s.int8_containers});
    at::NoGradGuard no_grad;
    const auto reference = load_quantized(manifest, c10::kCPU)->forward(data::normalize(images, m.preprocess));
    const auto d = deviation(onnxruntime_logits(file, images, dir.path()), reference);
    std::printf("[ onnxruntime ] %-18s %-10s max abs %.3g  max rel %.3g  top-1 agreement %.1f%%  (%lld bytes)\n",
                GetParam().c_str(), s.label, d.max_abs, d.max_rel, 100 * d.top1_agreement,
                static_cast<long long>(std::filesystem::file_size(file)));
    // The same grid in both: only float rounding differs (an occasional activation one grid step
    // off), so logits agree closely; far from it means a wrong scale, zero point or clip.
    EXPECT_LT(d.max_rel, 0.1) << s.label;
    EXPECT_GE(d.top1_agreement, 0.85) << s.label;
  }
}

TEST_P(OnnxRuntime, FloatExportMatchesTheFullPrecisionModel) {
  QIMERA_REQUIRE_ORT();
  const auto m = test_model(GetParam());
  TempDir dir;
  const auto images = random_images(*m.model, 8, 43);
  export_onnx(lower(*m.model, m.preprocess), dir / "float.onnx");
  at::NoGradGuard no_grad;
  const auto d = deviation(onnxruntime_logits(dir / "float.onnx", images, dir.path()),
                           m.model->forward(data::normalize(images, m.preprocess)));
  EXPECT_LT(d.max_rel, 1e-4);
  EXPECT_EQ(d.top1_agreement, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Deploy, OnnxRuntime, ::testing::ValuesIn(test_model_names()),
                         [](const auto& info) { return info.param == "fmnist-resnet20" ? std::string("teacher") : info.param; });

}  // namespace
}  // namespace qimera::deploy
