// Qimera (Choi et al., NeurIPS 2021; method.md): GDFQ's losses with Qimera's generator, superposed
// embeddings (K classes mixed with softmax weights, soft labels, in a share p of the batches), the
// disentanglement mapping (DM) and extracted embedding initialization (EEI).
#include "qimera/methods/gdfq_family.h"

namespace qimera::methods {
namespace {

using generator::GeneratorArch;

class Qimera : public Method {
 public:
  void describe(OptionVisitor& v) override {
    o_.describe(v);
    additions_.describe(v);
  }
  void validate() const override {
    o_.validate();
    additions_.validate();
  }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return true; }
  MethodOutcome run(const MethodContext& context) override {
    return run_gdfq_family(o_, &additions_, nullptr, context, "qimera");
  }
  std::unique_ptr<DataFreeTrainer> make_trainer(models::Classifier teacher,
                                                c10::Device device) const override {
    return make_gdfq_family_trainer(o_, &additions_, nullptr, std::move(teacher), device);
  }

 private:
  GdfqOptions o_{GeneratorArch::Qimera, {GeneratorArch::Qimera}};
  QimeraAdditions additions_;
};

}  // namespace

MethodInfo qimera_method() {
  return {"qimera",
          "Qimera: superposed embeddings (K, p, soft labels), DM and EEI on GDFQ's losses",
          [] { return std::make_unique<Qimera>(); },
          gdfq_family_presets([](const PaperSetting* s) {
            return s ? qimera_setting(*s) : nlohmann::json{{"se_k", 2}, {"se_p", 0.4}};
          })};
}

}  // namespace qimera::methods
