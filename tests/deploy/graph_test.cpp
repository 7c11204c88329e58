// The inference graph: lowering reproduces every architecture's fake-quantized logits bit for bit.
#include "deploy/support.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::deploy {
namespace {

using qimera::testing::TempDir;
using namespace deploy::support;

int count(const InferenceGraph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += op_name(node.op) == op;
  return n;
}

class EveryArchitecture : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryArchitecture, LoweredExportReproducesTheFakeQuantizedLogitsExactly) {
  const auto m = test_model(GetParam());
  TempDir dir;
  const auto config = config_of(4, 4);
  const auto manifest = read_quantized_manifest(quantized_export(m, config));
  const auto graph = lower_quantized(manifest);
  const auto loaded = load_quantized(manifest, c10::kCPU);
  const auto x = data::normalize(random_images(*loaded, 3, 5), m.preprocess);
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(run_reference(graph, x), loaded->forward(x)));
  // Every conv / linear and every activation quantizer appears once, batch norms too.
  const auto layers = quant::quantizable_layers(*loaded);
  int weights = 0, acts = 0;
  for (const auto& l : layers) (l.act ? acts : weights) += 1;
  EXPECT_EQ(count(graph, "conv") + count(graph, "linear"), weights);
  EXPECT_EQ(count(graph, "fake_quant"), acts);
  EXPECT_EQ(count(graph, "batch_norm"), static_cast<int>(loaded->batch_norms().size()));
  // The integers are the export's, on the 4-bit grid.
  for (const auto& node : graph.nodes) {
    if (const auto* conv = std::get_if<ConvOp>(&node.op)) {
      EXPECT_EQ(conv->integer.bits, 4) << node.name;
      EXPECT_GE(conv->integer.q.min().item<float>(), -8);
      EXPECT_LE(conv->integer.q.max().item<float>(), 7);
    }
  }
}

TEST_P(EveryArchitecture, LiveModelAndFloatModelLowerToo) {
  const auto m = test_model(GetParam());
  const auto x = data::normalize(random_images(*m.model, 2, 6), m.preprocess);
  at::NoGradGuard no_grad;
  // Full precision: no integers, no fake quantizers, same logits.
  const auto fp = lower(*m.model, m.preprocess);
  EXPECT_EQ(count(fp, "fake_quant"), 0);
  EXPECT_TRUE(at::equal(run_reference(fp, x), m.model->forward(x)));
}

INSTANTIATE_TEST_SUITE_P(Deploy, EveryArchitecture, ::testing::ValuesIn(test_model_names()),
                         [](const auto& info) { return info.param == "fmnist-resnet20" ? std::string("teacher") : info.param; });

TEST(InferenceGraph, LiveFakeQuantizedModelGivesTheExportsIntegers) {
  const auto m = test_model("resnet20_cifar10");
  auto q = models::clone_model(*m.model);
  quant::convert(*q, config_of(5, 6, {"features.stage2.*=float", "@last=8"}));
  at::NoGradGuard no_grad;
  q->forward(data::normalize(random_images(*q, 8, 1), m.preprocess));
  quant::set_observing(*q, false);
  const auto live = lower(*q, m.preprocess);
  TempDir dir;
  export_quantized(*q, config_of(5, 6, {"features.stage2.*=float", "@last=8"}), m.preprocess, dir / "q.json");
  const auto exported = lower_quantized(read_quantized_manifest(dir / "q.json"));
  ASSERT_EQ(live.nodes.size(), exported.nodes.size());
  int float_layers = 0;
  for (size_t i = 0; i < live.nodes.size(); ++i) {
    const auto* a = std::get_if<ConvOp>(&live.nodes[i].op);
    const auto* b = std::get_if<ConvOp>(&exported.nodes[i].op);
    if (!a) continue;
    ASSERT_TRUE(b);
    EXPECT_EQ(a->integer.bits, b->integer.bits);
    if (!a->integer.quantized()) {
      ++float_layers;  // the override left it in float: no integers anywhere
      EXPECT_EQ(b->integer.bits, 0);
      continue;
    }
    EXPECT_TRUE(at::equal(a->integer.q, b->integer.q)) << live.nodes[i].name;
    EXPECT_TRUE(at::equal(a->integer.scale, b->integer.scale));
    EXPECT_TRUE(at::equal(a->integer.zero_point, b->integer.zero_point));
  }
  EXPECT_EQ(float_layers, 7);  // stage 2: 3 units x 2 convs + the projection
  const auto* classifier = std::get_if<LinearOp>(&exported.nodes.back().op);
  ASSERT_TRUE(classifier);
  EXPECT_EQ(classifier->integer.bits, 8);  // @last=8
  EXPECT_GE(classifier->integer.q.min().item<float>(), -128);
  EXPECT_LE(classifier->integer.q.max().item<float>(), 127);
  const auto x = data::normalize(random_images(*q, 2, 2), m.preprocess);
  EXPECT_TRUE(at::equal(run_reference(live, x), q->forward(x)));
}

TEST(InferenceGraph, StripQuantizationLeavesTheFloatGraph) {
  const auto m = test_model("mobilenetv2_w1");
  auto q = models::clone_model(*m.model);
  quant::convert(*q, config_of(4, 4));
  at::NoGradGuard no_grad;
  q->forward(data::normalize(random_images(*q, 4, 1), m.preprocess));
  quant::set_observing(*q, false);
  const auto graph = lower(*q, m.preprocess);
  const auto stripped = strip_quantization(graph);
  EXPECT_EQ(count(stripped, "fake_quant"), 0);
  EXPECT_EQ(stripped.nodes.size(), graph.nodes.size() - static_cast<size_t>(count(graph, "fake_quant")));
  // Same weights, no activation quantization: the model with its activation quantizers off.
  for (const auto& l : quant::quantizable_layers(*q)) {
    if (l.act && l.act->has_quantizer()) l.act->set_enabled(false);
  }
  const auto x = data::normalize(random_images(*q, 2, 3), m.preprocess);
  EXPECT_TRUE(at::equal(run_reference(stripped, x), q->forward(x)));
}

TEST(InferenceGraph, BadFilesAreClearErrors) {
  TempDir dir;
  std::string message = qimera::testing::error_of([&] { lower_file(dir / "missing.json"); });
  EXPECT_NE(message.find("missing.json"), std::string::npos) << message;
  message = qimera::testing::error_of([&] { lower_file(dir.path()); });  // a folder without quantized.json
  EXPECT_NE(message.find("quantized.json"), std::string::npos) << message;
  qimera::testing::write_bytes(dir / "other.json", R"({"format": "something-else"})");
  message = qimera::testing::error_of([&] { lower_file(dir / "other.json"); });
  EXPECT_NE(message.find("other.json"), std::string::npos) << message;
  // A run folder resolves to its quantized.json.
  const auto m = test_model("resnet20_cifar10");
  const auto manifest = quantized_export(m, config_of(4, 4));
  std::filesystem::create_directories(dir / "run");
  std::filesystem::copy_file(manifest, dir / "run/quantized.json");
  std::filesystem::copy_file(std::filesystem::path(manifest).replace_extension(".safetensors"),
                             dir / "run" / std::filesystem::path(manifest).replace_extension(".safetensors").filename());
  EXPECT_EQ(resolve_model_file(dir / "run"), dir / "run/quantized.json");
  EXPECT_GT(lower_file(dir / "run").nodes.size(), 20u);
}

}  // namespace
}  // namespace qimera::deploy
