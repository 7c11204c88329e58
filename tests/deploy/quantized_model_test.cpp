#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::deploy {
namespace {

using testing::TempDir;

models::Classifier observed_quantized_model(const quant::QuantConfig& config) {
  at::manual_seed(1);
  auto p = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 3, 16});
  p->eval();
  auto q = models::clone_model(*p);
  quant::convert(*q, config);
  at::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) q->forward(at::randn({8, 3, 16, 16}));
  quant::set_observing(*q, false);
  return q;
}

TEST(QuantizedModel, RoundTripReproducesLogitsExactly) {
  quant::QuantConfig config;
  config.overrides = {quant::parse_layer_override("@first=8"),
                      quant::parse_layer_override("features.stage3.unit3.*=float")};
  auto q = observed_quantized_model(config);
  TempDir dir;
  const auto summary = export_quantized(*q, config, data::preprocess_preset("cifar10"),
                                        dir / "model.json", {}, {{"method", "test"}});
  EXPECT_TRUE(std::filesystem::exists(summary.weights));
  ASSERT_TRUE(is_quantized_manifest(dir / "model.json"));
  const auto manifest = read_quantized_manifest(dir / "model.json");
  auto loaded = load_quantized(manifest, c10::kCPU);
  const auto x = at::randn({5, 3, 16, 16});
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(loaded->forward(x), q->forward(x)));
  EXPECT_EQ(manifest.layers.front().bits, 8);
  // The overrides are part of the label: "4w4a" alone would hide the float stage.
  EXPECT_EQ(manifest.config.short_name(), "4w4a (@first=8, features.stage3.unit3.*=float)");
}

std::vector<std::pair<float, float>> act_ranges(const models::ClassifierImpl& model) {
  std::vector<std::pair<float, float>> out;
  for (const auto& layer : quant::quantizable_layers(model)) {
    if (!layer.act) continue;
    const auto [lo, hi] = layer.act->range();
    out.emplace_back(lo.item<float>(), hi.item<float>());
  }
  return out;
}

TEST(QuantizedModel, AdoptedActivationRangesMakeTheOtherModelWhenTheWeightsAreTheSame) {
  const quant::QuantConfig config;
  auto q = observed_quantized_model(config);
  TempDir dir;
  export_quantized(*q, config, data::preprocess_preset("none"), dir / "a.json");
  for (const auto& layer : quant::quantizable_layers(*q)) {
    if (!layer.act) continue;
    const auto [lo, hi] = layer.act->range();
    layer.act->set_range(lo.item<float>(), 1.5f * hi.item<float>());
  }
  export_quantized(*q, config, data::preprocess_preset("none"), dir / "b.json");
  const auto a = read_quantized_manifest(dir / "a.json"), b = read_quantized_manifest(dir / "b.json");
  const auto x = at::randn({4, 3, 16, 16});
  at::NoGradGuard no_grad;

  auto all = load_quantized(a, c10::kCPU);
  const auto changed = adopt_act_ranges(*all, b, dir / "b.json");
  EXPECT_EQ(changed.size(), act_ranges(*all).size());  // every activation of ResNet-20 is quantized
  EXPECT_TRUE(at::equal(all->forward(x), load_quantized(b, c10::kCPU)->forward(x)));
  EXPECT_FALSE(at::equal(all->forward(x), load_quantized(a, c10::kCPU)->forward(x)));

  auto part = load_quantized(a, c10::kCPU);
  const auto stage1 = adopt_act_ranges(*part, b, dir / "b.json", {"features.stage1.*"});
  EXPECT_EQ(stage1.size(), 6u);  // three units, two activations each
  const auto from_a = act_ranges(*load_quantized(a, c10::kCPU));
  const auto from_b = act_ranges(*load_quantized(b, c10::kCPU));
  const auto mixed = act_ranges(*part);
  const auto layers = quant::quantizable_layers(*part);
  size_t i = 0;
  for (const auto& layer : layers) {
    if (!layer.act) continue;
    const bool in_stage1 = layer.name.rfind("features.stage1.", 0) == 0;
    EXPECT_EQ(mixed[i], in_stage1 ? from_b[i] : from_a[i]) << layer.name;
    ++i;
  }
}

TEST(QuantizedModel, AdoptingRangesFromAnotherArchitectureOrWithAStrayPatternIsAClearError) {
  const quant::QuantConfig config;
  auto q = observed_quantized_model(config);
  TempDir dir;
  export_quantized(*q, config, data::preprocess_preset("none"), dir / "a.json");
  const auto a = read_quantized_manifest(dir / "a.json");
  auto model = load_quantized(a, c10::kCPU);
  try {
    adopt_act_ranges(*model, a, dir / "a.json", {"features.stage9.*"});
    FAIL() << "a pattern that matches nothing must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("features.stage9.*"), std::string::npos) << e.what();
  }
  auto shorter = a;
  shorter.layers.pop_back();
  try {
    adopt_act_ranges(*model, shorter, dir / "other.json");
    FAIL() << "a different architecture must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.json"), std::string::npos) << e.what();
  }
  auto float_layer = a;
  float_layer.act_ranges.erase("features.stage2.unit1.activ");
  EXPECT_THROW(adopt_act_ranges(*model, float_layer, dir / "a.json"), Error);
}

TEST(QuantizedModel, FourBitWeightsAreStoredTwoPerByte) {
  auto q = observed_quantized_model(quant::QuantConfig{});
  TempDir dir;
  const auto summary =
      export_quantized(*q, quant::QuantConfig{}, data::preprocess_preset("none"), dir / "m.json");
  const auto state = io::read_safetensors(summary.weights);
  bool found = false;
  for (const auto& [name, t] : state) {
    if (name == "features.stage1.unit1.body.conv1.conv.weight_q") {
      found = true;
      EXPECT_EQ(t.scalar_type(), at::kByte);
      EXPECT_EQ(t.numel(), 16 * 16 * 9 / 2);
    }
    EXPECT_NE(name, "features.stage1.unit1.body.conv1.conv.weight");
  }
  EXPECT_TRUE(found);
  // ResNet-20's weights dominate its size: 4-bit storage is well under a quarter of float32.
  EXPECT_LT(summary.ratio(), 0.25);
  EXPECT_GT(summary.ratio(), 1.0 / 8);
}

TEST(QuantizedModel, CorruptOrForeignFilesAreClearErrors) {
  TempDir dir;
  testing::write_bytes(dir / "not.json", "{\"format\": \"something-else\"}");
  EXPECT_FALSE(is_quantized_manifest(dir / "not.json"));
  EXPECT_THROW(read_quantized_manifest(dir / "not.json"), Error);
  auto q = observed_quantized_model(quant::QuantConfig{});
  const auto summary =
      export_quantized(*q, quant::QuantConfig{}, data::preprocess_preset("none"), dir / "m.json");
  // Drop one tensor from the weights file.
  auto state = io::read_safetensors(summary.weights);
  state.erase(state.begin());
  io::write_safetensors(summary.weights, state);
  const auto message =
      testing::error_of([&] { load_quantized(read_quantized_manifest(dir / "m.json"), c10::kCPU); });
  EXPECT_NE(message.find("missing tensor"), std::string::npos) << message;
}

TEST(ModelCard, RoundTripAndLoad) {
  TempDir dir;
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 1, 28});
  io::write_safetensors(dir / "w/teacher.safetensors", io::state_dict_of(*model));
  ModelCard card;
  card.spec = model->spec();
  card.weights = dir / "w/teacher.safetensors";
  card.preprocess = data::preprocess_preset("fashion-mnist");
  card.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  card.provenance = {{"command", "qimera train ..."}};
  write_model_card(dir / "teacher.json", card);
  // The weights path is stored relative to the card.
  EXPECT_EQ(read_json(dir / "teacher.json")["weights"], "w/teacher.safetensors");
  const auto back = read_model_card(dir / "teacher.json");
  EXPECT_EQ(back.spec, card.spec);
  EXPECT_EQ(back.class_names, card.class_names);
  auto loaded = load_classifier(back, c10::kCPU);
  model->eval();
  const auto x = at::randn({2, 1, 28, 28});
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(loaded->forward(x), model->forward(x)));
}

TEST(ModelCard, PresetNeedsWeightsAndCardErrorsNameTheFile) {
  EXPECT_THROW(resolve_model("resnet20_cifar10"), Error);
  const auto card = resolve_model("resnet20_cifar100", "/some/w.pth");
  EXPECT_EQ(card.spec.num_classes, 100);
  TempDir dir;
  testing::write_bytes(dir / "bad.json", "{\"format\": \"qimera-model/1\", \"model\": {}}");
  const auto message = testing::error_of([&] { read_model_card(dir / "bad.json"); });
  EXPECT_NE(message.find("bad.json"), std::string::npos) << message;
}

TEST(ModelCard, LoadsThePytorchFixtureThroughAPreset) {
  auto model = load_classifier(preset_card("resnet20_cifar10", testing::fixture("resnet20_cifar10_formula.pt")),
                               c10::kCPU);
  at::NoGradGuard no_grad;
  const auto logits = model->forward(testing::sine_tensor({2, 3, 32, 32}));
  const auto want = testing::json_tensor(testing::parity()["resnet20_cifar10"]["logits"]);
  EXPECT_LE((logits - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
}

}  // namespace
}  // namespace qimera::deploy
