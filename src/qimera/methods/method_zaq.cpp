// ZAQ (Liu et al., CVPR 2021; baselines.md section 4) and Qimera + ZAQ (the Qimera paper's Eq. 11,
// 12). ZAQ's generator has no labels and is trained adversarially: each iteration makes
// `q_steps` Q steps on fresh detached samples, minimizing the P-Q discrepancy on outputs (L_o) and
// stage features (L_f), then one G step maximizing it plus beta times P's last-stage activation
// (L_a). Qimera + ZAQ gives the generator class embeddings with superposition, and adds rho times
// the soft-label cross-entropy of P (for G) and of Q (for Q).
#include "qimera/core/error.h"
#include "qimera/methods/zaq_family.h"

namespace qimera::methods {
namespace {

using generator::GeneratorArch;

class Zaq : public Method {
 public:
  explicit Zaq(bool qimera) : qimera_(qimera), o_(qimera ? GeneratorArch::ZaqEmbedding : GeneratorArch::Zaq) {}
  void describe(OptionVisitor& v) override {
    o_.describe(v, qimera_);
    if (qimera_) additions_.describe(v);
  }
  void validate() const override {
    o_.validate();
    if (qimera_) additions_.validate();
  }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return true; }

  MethodOutcome run(const MethodContext& c) override {
    auto trainer = make_zaq_trainer(o_, qimera_ ? &additions_ : nullptr, c.teacher, c.device);
    return train(*trainer, o_.loop, c, (qimera_ ? "qimera-zaq " : "zaq ") + o_.quant.short_name());
  }
  std::unique_ptr<DataFreeTrainer> make_trainer(models::Classifier teacher,
                                                c10::Device device) const override {
    return make_zaq_trainer(o_, qimera_ ? &additions_ : nullptr, std::move(teacher), device);
  }

 private:
  bool qimera_;
  ZaqOptions o_;
  QimeraAdditions additions_;
};

// ZAQ's own schedule at every CIFAR setting (its code covers CIFAR only); the short schedule.
std::vector<PresetInfo> zaq_presets(bool qimera) {
  std::vector<PresetInfo> presets{
      {"fmnist-short", kFmnistShortDescription,
       merge({{"epochs", 8}, {"iterations", 150}, {"batch_size", 64}, {"observe_epochs", 2},
              {"lr_q", 1e-3}, {"lr_schedule", "multistep:6"}, {"observer", "percentile"}},
             qimera ? nlohmann::json{{"se_k", 2}, {"se_p", 0.4}} : nlohmann::json::object())}};
  for (const auto& s : paper_settings()) {
    if (s.imagenet) continue;
    nlohmann::json patch{{"wbits", s.bits}, {"abits", s.bits}, {"observe_epochs", 4}};
    presets.push_back({s.name, "ZAQ's published schedule (300 x 60 iterations of 256) at " + s.description,
                       qimera ? merge(patch, qimera_setting(s)) : patch});
  }
  return presets;
}

}  // namespace

Objective zaq_generator_objective(const ZaqLoss& zaq, double rho) {
  std::vector<WeightedTerm> terms{{zaq_discrepancy(zaq.feature_weight), -1.0},
                                  {zaq_activation(), -zaq.activation_weight}};
  if (rho > 0) terms.push_back({teacher_cross_entropy(), rho});
  return Objective("g", terms);
}

Objective zaq_student_objective(const ZaqLoss& zaq, double rho) {
  std::vector<WeightedTerm> terms{{zaq_discrepancy(zaq.feature_weight), 1.0}};
  if (rho > 0) terms.push_back({student_cross_entropy(), rho});
  return Objective("q", terms);
}

std::unique_ptr<DataFreeTrainer> make_zaq_trainer(const ZaqOptions& o, const QimeraAdditions* additions,
                                                  models::Classifier teacher, c10::Device device) {
  IterationPlan plan;
  plan.order = IterationPlan::Order::StudentFirst;
  plan.student_steps = o.zaq.q_steps;
  plan.student_bn_train = o.zaq.public_code_quirks;
  auto schedule = o.schedule;
  if (o.zaq.public_code_quirks) schedule.observe_epochs = o.loop.epochs;  // ranges never fixed
  const auto se = additions ? additions->superposition : generator::SuperpositionOptions{2, 0.0};
  const double rho = additions ? o.rho : 0.0;
  return std::make_unique<DataFreeTrainer>(
      std::move(teacher), make_setup(o, schedule, plan),
      [&](const models::ClassifierImpl& p) {
        return std::make_unique<GeneratorSource>(build_generator(o.generator, additions, p), se, device);
      },
      zaq_generator_objective(o.zaq, rho), zaq_student_objective(o.zaq, rho), device);
}

MethodInfo zaq_method() {
  return {"zaq",
          "ZAQ: a label-free generator trained to make P and Q disagree (outputs and stage "
          "features); Q learns to agree, 5 Q steps per G step",
          [] { return std::make_unique<Zaq>(false); }, zaq_presets(false)};
}

MethodInfo qimera_zaq_method() {
  return {"qimera-zaq",
          "Qimera + ZAQ: ZAQ with class embeddings, superposition and rho x soft-label CE for G and Q",
          [] { return std::make_unique<Zaq>(true); }, zaq_presets(true)};
}

}  // namespace qimera::methods
