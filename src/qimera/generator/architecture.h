// The generator architectures, by name, as the model zoo lists classifiers: every entry with its
// description and whether it can be built, one factory, and a visitor for tests.
#pragma once

#include "qimera/generator/generator.h"

#include <string>
#include <string_view>
#include <vector>

namespace qimera::generator {

enum class GeneratorArch {
  Qimera,        // Qimera's: class embeddings + noise, normalizer, optional DM, superposition
  Gdfq,          // GDFQ's as published: noise times the class embedding (CBN at ImageNet size)
  Zaq,           // ZAQ's: noise (256) only, no labels, BN eps 1e-5
  ZaqEmbedding,  // ZAQ's body with Qimera's embedding input: Qimera + ZAQ (paper Eq. 11, 12)
  AutoReCon,     // searched by AutoReCon; its cell is not published: listed, never built
};

struct GeneratorArchInfo {
  GeneratorArch arch;
  std::string_view name;
  std::string_view description;
  bool available;
  bool superposition;  // takes Qimera's SE, DM and EEI
};

/// Every architecture, in a fixed order.
const std::vector<GeneratorArchInfo>& generator_archs();
const GeneratorArchInfo& info(GeneratorArch arch);
/// Parses a name; an unknown one lists the known ones, an unavailable one says why.
GeneratorArch parse_generator_arch(std::string_view name);
std::string_view to_string(GeneratorArch arch);

/// What the teacher decides about a generator.
struct GeneratorTarget {
  int64_t num_classes;
  int64_t image_size;
  int64_t channels;
  int64_t feature_dim;  // the teacher's penultimate width: Qimera's embedding width (EEI)
  bool conditional_bn;  // categorical conditional BN in the body (ImageNet-size images)
};

/// The options of `arch` for `target`; Qimera's additions (DM, EEI, frozen embeddings) are the
/// caller's to set on top where info(arch).superposition.
GeneratorOptions generator_options(GeneratorArch arch, const GeneratorTarget& target);

}  // namespace qimera::generator
