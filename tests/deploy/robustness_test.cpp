// Hostile and broken model cards, weights and integer exports: raw library messages, recursion on
// nested values, sizes that ask for terabytes, and numbers that load but are garbage.
#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <limits>

namespace qimera::deploy {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using qimera::testing::error_of;

const models::ModelSpec kSpec{models::Arch::ResNet20Cifar, 3, 1, 8};

// A valid card and weights in `dir`; returns the card's JSON for editing.
nlohmann::json write_card(const TempDir& dir, const io::StateDict& weights = {}) {
  auto model = models::build_model(kSpec);
  io::write_safetensors(dir / "w.safetensors", weights.empty() ? io::state_dict_of(*model) : weights);
  ModelCard card;
  card.spec = kSpec;
  card.weights = dir / "w.safetensors";
  card.preprocess = data::preprocess_preset("mnist");
  write_model_card(dir / "card.json", card);
  return read_json(dir / "card.json");
}

std::string card_error(const TempDir& dir, const nlohmann::json& card) {
  write_json(dir / "bad.json", card);
  return error_of([&] { read_model_card(dir / "bad.json"); });
}

TEST(ModelCardRobustness, WrongTypesGetTheFieldNotALibraryMessage) {
  TempDir dir;
  auto card = write_card(dir);
  card["format"] = 5;
  EXPECT_THAT(card_error(dir, card),
              AllOf(HasSubstr("bad.json"), HasSubstr("\"format\" must be \"qimera-model/1\", found 5"),
                    Not(HasSubstr("json.exception"))));
  card = write_card(dir);
  card["model"]["num_classes"] = "ten";
  EXPECT_THAT(card_error(dir, card),
              AllOf(HasSubstr("bad.json"), HasSubstr("num_classes is \"ten\" (a string)")));
  card = write_card(dir);
  card["weights"] = nlohmann::json::array();
  EXPECT_THAT(card_error(dir, card), HasSubstr("\"weights\" is [] (a list), expected a string"));
  card = write_card(dir);
  card["class_names"] = {"a", 2, "c"};
  EXPECT_THAT(card_error(dir, card), HasSubstr("class_names[1] is 2"));
}

TEST(ModelCardRobustness, SizesAreBoundedAndNeverPrintedNegative) {
  TempDir dir;
  auto card = write_card(dir);
  card["model"]["image_size"] = 100000;  // asked for 2.5 TB
  EXPECT_THAT(card_error(dir, card),
              AllOf(HasSubstr("bad.json"), HasSubstr("100000x100000"), HasSubstr("larger than")));
  card = write_card(dir);
  card["model"]["num_classes"] = nlohmann::json::parse("9223372036854775808");
  EXPECT_THAT(card_error(dir, card),
              AllOf(HasSubstr("num_classes is 9223372036854775808"), Not(HasSubstr("-9223"))));
  card = write_card(dir);
  card["model"]["num_classes"] = 1000000000;
  EXPECT_THAT(card_error(dir, card), HasSubstr("2 to 100000 classes"));
  card = write_card(dir);
  card["preprocess"]["resize"] = 1 << 20;
  EXPECT_THAT(card_error(dir, card), HasSubstr("at most 4096"));
}

TEST(ModelCardRobustness, ADeeplyNestedPreprocessIsAnErrorNotACrash) {
  TempDir dir;
  write_card(dir);
  std::string text = read_file(dir / "card.json");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const size_t at = text.find("\"preprocess\": {");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 15, "\"mean\": " + deep + ", ");
  testing::write_bytes(dir / "deep.json", text);
  EXPECT_GT(text.size(), 200000u);
  EXPECT_THAT(error_of([&] { read_model_card(dir / "deep.json"); }),
              AllOf(HasSubstr("deep.json"), HasSubstr("nested")));
  // Within the nesting limit, a wrong value is shown as a short excerpt.
  auto card = write_card(dir);
  card["preprocess"]["mean"] = nlohmann::json::parse(std::string(40, '[') + std::string(40, ']'));
  const std::string message = card_error(dir, card);
  EXPECT_THAT(message, HasSubstr("preprocessing mean[0] is [[[["));
  EXPECT_LT(message.size(), 400u);
}

TEST(NonFiniteWeights, AreRefusedWhenLoadedNamingTheTensorOrLoadedWithAWarning) {
  TempDir dir;
  auto model = models::build_model(kSpec);
  auto weights = io::state_dict_of(*model);
  for (auto& [name, tensor] : weights) tensor = tensor.clone();
  weights[0].second.view(-1)[3] = std::numeric_limits<float>::quiet_NaN();
  write_card(dir, weights);
  const auto card = read_model_card(dir / "card.json");
  EXPECT_THAT(error_of([&] { load_classifier(card, c10::kCPU); }),
              AllOf(HasSubstr("w.safetensors"), HasSubstr("'" + weights[0].first + "'"),
                    HasSubstr("1 NaN"), HasSubstr("--allow-nonfinite")));
  auto loaded = load_classifier(card, c10::kCPU, true, io::NonFinite::Warn);
  EXPECT_TRUE(at::isnan(io::state_dict_of(*loaded)[0].second).any().item<bool>());
}

models::Classifier observed_quantized_model() {
  at::manual_seed(1);
  auto q = models::build_model(kSpec);
  q->eval();
  quant::convert(*q, quant::QuantConfig{});
  at::NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) q->forward(at::randn({4, 1, 8, 8}));
  quant::set_observing(*q, false);
  return q;
}

// Exports a quantized model, then rewrites one tensor of its weights file.
std::string load_error_after_edit(const TempDir& dir, const std::string& suffix,
                                  const std::function<void(at::Tensor&)>& edit,
                                  io::NonFinite policy = io::NonFinite::Refuse) {
  auto q = observed_quantized_model();
  export_quantized(*q, quant::QuantConfig{}, data::preprocess_preset("none"), dir / "q.json");
  auto state = io::read_safetensors(dir / "q.safetensors");
  bool edited = false;
  for (auto& [name, tensor] : state) {
    if (!edited && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      edit(tensor);
      edited = true;
    }
  }
  EXPECT_TRUE(edited) << suffix;
  io::write_safetensors(dir / "q.safetensors", state);
  const auto manifest = read_quantized_manifest(dir / "q.json");
  if (policy == io::NonFinite::Warn) {
    load_quantized(manifest, c10::kCPU, policy);
    return "";
  }
  return error_of([&] { load_quantized(manifest, c10::kCPU); });
}

TEST(QuantizedRobustness, NonFiniteScalesAndInvertedRangesAreRefusedNamingTheTensor) {
  TempDir dir;
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(load_error_after_edit(dir, ".weight_scale", [&](at::Tensor& t) { t[0] = nan; }),
              AllOf(HasSubstr("q.safetensors"), HasSubstr(".weight_scale'"), HasSubstr("NaN")));
  EXPECT_THAT(load_error_after_edit(dir, ".weight_scale", [&](at::Tensor& t) { t[1] = -2.0f; }),
              AllOf(HasSubstr(".weight_scale'"), HasSubstr("scales must be positive")));
  EXPECT_THAT(load_error_after_edit(dir, ".act_range", [&](at::Tensor& t) { t.copy_(at::tensor({3.0f, 1.0f})); }),
              AllOf(HasSubstr(".act_range'"), HasSubstr("inverted")));
  EXPECT_EQ(load_error_after_edit(dir, ".act_range", [&](at::Tensor& t) { t.copy_(at::tensor({3.0f, 1.0f})); },
                                  io::NonFinite::Warn),
            "");
}

// The weights file's act_range is what runs; a manifest edited by hand (a range tuned in the JSON)
// used to load and silently evaluate the old range.
TEST(QuantizedRobustness, AManifestRangeThatDisagreesWithTheWeightsFileIsRefused) {
  TempDir dir;
  auto q = observed_quantized_model();
  export_quantized(*q, quant::QuantConfig{}, data::preprocess_preset("none"), dir / "q.json");
  const auto original = read_json(dir / "q.json");
  auto edited = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto manifest = original;
    nlohmann::json* act = nullptr;
    for (auto& layer : manifest["layers"]) {
      if (layer["kind"] == "act" && !act) act = &layer;
    }
    EXPECT_NE(act, nullptr);
    edit(*act);
    write_json(dir / "q.json", manifest);
    return read_quantized_manifest(dir / "q.json");
  };
  auto load_with = [&](const std::function<void(nlohmann::json&)>& edit) {
    return error_of([&] { load_quantized(edited(edit), c10::kCPU); });
  };
  std::string name;
  for (const auto& layer : original["layers"]) {
    if (layer["kind"] == "act" && name.empty()) name = layer["name"];
  }
  EXPECT_THAT(load_with([](nlohmann::json& act) { act["range"][1] = act["range"][1].get<double>() * 0.5; }),
              AllOf(HasSubstr("layer " + name + "'s range"), HasSubstr("'" + name + ".act_range'"),
                    HasSubstr("q.safetensors")));
  // Rounding in the printed value is not a disagreement, and older manifests state no range.
  EXPECT_NO_THROW(load_quantized(edited([](nlohmann::json& act) {
                                   act["range"][1] = act["range"][1].get<double>() * (1 + 1e-9);
                                 }),
                                 c10::kCPU));
  EXPECT_NO_THROW(load_quantized(edited([](nlohmann::json& act) { act.erase("range"); }), c10::kCPU));
  EXPECT_THAT(error_of([&] { edited([](nlohmann::json& act) { act["range"] = {1.0}; }); }),
              AllOf(HasSubstr("q.json"), HasSubstr("expected [lo, hi]")));
}

TEST(QuantizedRobustness, ExportingNonFiniteWeightsIsAnErrorNamingTheLayer) {
  TempDir dir;
  auto q = observed_quantized_model();
  std::string name;
  for (const auto& layer : quant::quantizable_layers(*q)) {
    if (!layer.weight_quantizer()) continue;
    at::NoGradGuard no_grad;
    layer.weight().view(-1)[0] = std::numeric_limits<float>::infinity();
    name = layer.name;
    break;
  }
  EXPECT_THAT(error_of([&] {
                export_quantized(*q, quant::QuantConfig{}, data::preprocess_preset("none"), dir / "q.json");
              }),
              AllOf(HasSubstr("q.json"), HasSubstr("layer " + name + " hold"), HasSubstr("NaN or infinite")));
}


TEST(QuantConfigLabel, OverridesArePartOfTheName) {
  quant::QuantConfig config;
  config.overrides = {quant::parse_layer_override("*=float")};
  EXPECT_EQ(config.short_name(), "4w4a (*=float)");  // it said "4w4a" for a float model
  config.overrides = {quant::parse_layer_override("@first=8"), quant::parse_layer_override("@last=4x8")};
  EXPECT_EQ(config.short_name(), "4w4a (@first=8, @last=4x8)");
  EXPECT_EQ(quant::QuantConfig{}.short_name(), "4w4a");
}

}  // namespace
}  // namespace qimera::deploy
