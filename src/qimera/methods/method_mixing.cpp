// GDFQ + Mixup and GDFQ + Cutmix (the Qimera paper's Table 2 and 5; baselines.md section 3): GDFQ's
// images mixed in pixel space with a permutation of their batch, labels mixed in proportion. The
// paper publishes neither the ratio distribution nor the share of mixed batches nor whether G's
// loss sees the mix: the defaults are the augmentations' own (Beta(1, 1); Mixup on every batch,
// Cutmix on half of them at CIFAR size, on all at ImageNet size; G sees the mixed batch).
#include "qimera/methods/gdfq_family.h"

namespace qimera::methods {
namespace {

using generator::GeneratorArch;
using generator::MixKind;

class GdfqMixing : public Method {
 public:
  explicit GdfqMixing(MixKind kind) {
    mixing_.mixing.kind = kind;
    mixing_.mixing.probability = kind == MixKind::Mixup ? 1.0 : 0.5;
  }
  void describe(OptionVisitor& v) override {
    o_.describe(v);
    mixing_.describe(v);
  }
  void validate() const override {
    o_.validate();
    mixing_.validate();
  }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return true; }
  MethodOutcome run(const MethodContext& context) override {
    return run_gdfq_family(o_, nullptr, &mixing_.mixing, context,
                           "gdfq-" + std::string(generator::to_string(mixing_.mixing.kind)));
  }
  std::unique_ptr<DataFreeTrainer> make_trainer(models::Classifier teacher,
                                                c10::Device device) const override {
    return make_gdfq_family_trainer(o_, nullptr, &mixing_.mixing, std::move(teacher), device);
  }

 private:
  GdfqOptions o_{GeneratorArch::Gdfq, {GeneratorArch::Gdfq, GeneratorArch::Qimera}};
  MixingGroup mixing_;
};

std::vector<PresetInfo> presets(MixKind kind) {
  return gdfq_family_presets([kind](const PaperSetting* s) {
    if (kind == MixKind::Mixup) return nlohmann::json::object();
    return nlohmann::json{{"mix_prob", s && s->imagenet ? 1.0 : 0.5}};
  });
}

}  // namespace

MethodInfo gdfq_mixup_method() {
  return {"gdfq-mixup",
          "GDFQ + Mixup: GDFQ's images blended pairwise, lambda ~ Beta(a, a), labels blended alike",
          [] { return std::make_unique<GdfqMixing>(MixKind::Mixup); }, presets(MixKind::Mixup)};
}

MethodInfo gdfq_cutmix_method() {
  return {"gdfq-cutmix",
          "GDFQ + Cutmix: a box of a partner image pasted in, labels mixed by the box's area",
          [] { return std::make_unique<GdfqMixing>(MixKind::Cutmix); }, presets(MixKind::Cutmix)};
}

}  // namespace qimera::methods
