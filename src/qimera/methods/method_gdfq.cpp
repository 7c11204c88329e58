// GDFQ (Xu et al., ECCV 2020) as published (baselines.md section 2): its own generator (noise times
// the class embedding, no standardization; at ImageNet size noise only, labels through conditional
// BN), hard labels, CE + 0.1 BNS for G and KD + CE for Q. `--generator qimera` uses Qimera's
// generator instead (the same as `--method qimera --se-p 0`).
#include "qimera/methods/gdfq_family.h"

namespace qimera::methods {
namespace {

using generator::GeneratorArch;

class Gdfq : public Method {
 public:
  void describe(OptionVisitor& v) override { o_.describe(v); }
  void validate() const override { o_.validate(); }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return true; }
  MethodOutcome run(const MethodContext& context) override {
    return run_gdfq_family(o_, nullptr, nullptr, context, "gdfq");
  }
  std::unique_ptr<DataFreeTrainer> make_trainer(models::Classifier teacher,
                                                c10::Device device) const override {
    return make_gdfq_family_trainer(o_, nullptr, nullptr, std::move(teacher), device);
  }

 private:
  GdfqOptions o_{GeneratorArch::Gdfq, {GeneratorArch::Gdfq, GeneratorArch::Qimera}};
};

}  // namespace

MethodInfo gdfq_method() {
  return {"gdfq",
          "GDFQ as published: its generator (noise x class embedding), hard labels, CE + BNS for "
          "G, KD + CE for Q",
          [] { return std::make_unique<Gdfq>(); },
          gdfq_family_presets([](const PaperSetting*) { return nlohmann::json::object(); })};
}

}  // namespace qimera::methods
