// Model cards, quantized-model manifests and the option structs read from JSON, on arbitrary bytes:
// the depth-bounded parser, the typed accessors and every from_json.
#include "fuzz_input.h"
#include "qimera/core/json_value.h"
#include "qimera/data/preprocess.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/generator/generator.h"
#include "qimera/generator/latents.h"
#include "qimera/models/model_spec.h"
#include "qimera/quant/convert.h"

using namespace qimera;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json value;
  try {
    value = parse_json(text, "fuzz.json");
  } catch (const Error&) {
    return 0;
  }
  json_excerpt(value);
  fuzz::expect_clean([&] { models::ModelSpec::from_json(value); });
  fuzz::expect_clean([&] { data::preprocess_from_json(value); });
  fuzz::expect_clean([&] { quant::QuantConfig::from_json(value); });
  fuzz::expect_clean([&] { generator::GeneratorOptions::from_json(value); });
  fuzz::expect_clean([&] { generator::SuperpositionOptions::from_json(value); });
  if (value.is_object()) {
    for (const char* key : {"model", "preprocess", "quantization"}) {
      if (!value.contains(key)) continue;
      fuzz::expect_clean([&] { models::ModelSpec::from_json(value[key]); });
      fuzz::expect_clean([&] { data::preprocess_from_json(value[key]); });
      fuzz::expect_clean([&] { quant::QuantConfig::from_json(value[key]); });
    }
  }
  const fuzz::InputAsFile file(data, size);
  fuzz::expect_clean([&] { deploy::read_model_card(file.path()); });
  fuzz::expect_clean([&] { deploy::read_quantized_manifest(file.path()); });
  return 0;
}
