#include "qimera/generator/architecture.h"

#include "qimera/core/error.h"

namespace qimera::generator {
namespace {

constexpr int64_t kGdfqLatent = 100;  // GDFQ's latent_dim
constexpr int64_t kZaqLatent = 256;   // ZAQ's nz
constexpr double kZaqEps = 1e-5;      // every batch norm of ZAQ's generator

}  // namespace

const std::vector<GeneratorArchInfo>& generator_archs() {
  static const std::vector<GeneratorArchInfo> archs = {
      {GeneratorArch::Qimera, "qimera",
       "Qimera's: class embedding + noise, standardized, optional DM, superposed embeddings; "
       "conditional BN at ImageNet size",
       true, true},
      {GeneratorArch::Gdfq, "gdfq",
       "GDFQ's as published: noise (100) times the class embedding, no standardization; at "
       "ImageNet size noise only, labels through conditional BN",
       true, false},
      {GeneratorArch::Zaq, "zaq", "ZAQ's: noise (256) only, no labels, BN eps 1e-5", true, false},
      {GeneratorArch::ZaqEmbedding, "zaq-embedding",
       "ZAQ's body (BN eps 1e-5) with Qimera's embedding input and superposition (Qimera + ZAQ)",
       true, true},
      {GeneratorArch::AutoReCon, "autorecon",
       "unavailable: AutoReCon's searched generator cell is not published anywhere we can read",
       false, false},
  };
  return archs;
}

const GeneratorArchInfo& info(GeneratorArch arch) {
  for (const auto& i : generator_archs()) {
    if (i.arch == arch) return i;
  }
  fail("unknown generator architecture {}", static_cast<int>(arch));
}

std::string_view to_string(GeneratorArch arch) { return info(arch).name; }

GeneratorArch parse_generator_arch(std::string_view name) {
  std::vector<std::string> names;
  for (const auto& i : generator_archs()) {
    if (i.name == name) {
      require(i.available, "generator '{}' is {}", name, i.description);
      return i.arch;
    }
    if (i.available) names.emplace_back(i.name);
  }
  fail("unknown generator '{}': expected one of {}", name, fmt::join(names, ", "));
}

GeneratorOptions generator_options(GeneratorArch arch, const GeneratorTarget& t) {
  switch (arch) {
    case GeneratorArch::Qimera: {
      GeneratorOptions o(t.num_classes, t.image_size, t.channels, t.feature_dim);
      o.conditional_bn = t.conditional_bn;
      return o;
    }
    case GeneratorArch::Gdfq: {
      GeneratorOptions o(t.num_classes, t.image_size, t.channels, kGdfqLatent);
      o.conditional_bn = t.conditional_bn;
      o.input = t.conditional_bn ? LatentInput::Noise : LatentInput::Product;
      return o;
    }
    case GeneratorArch::Zaq: {
      require(!t.conditional_bn, "ZAQ's generator has no labels, so no conditional batch norm");
      GeneratorOptions o(t.num_classes, t.image_size, t.channels, kZaqLatent);
      o.input = LatentInput::Noise;
      o.body_eps = kZaqEps;
      return o;
    }
    case GeneratorArch::ZaqEmbedding: {
      require(!t.conditional_bn, "ZAQ's generator body has no conditional batch norm");
      GeneratorOptions o(t.num_classes, t.image_size, t.channels, t.feature_dim);
      o.body_eps = kZaqEps;
      return o;
    }
    case GeneratorArch::AutoReCon:
      break;
  }
  fail("generator '{}' is {}", to_string(arch), info(arch).description);
}

}  // namespace qimera::generator
