// The parts ZAQ and Qimera + ZAQ share: options, objectives and the trainer.
#pragma once

#include "qimera/core/error.h"
#include "qimera/methods/gdfq_family.h"

namespace qimera::methods {

struct ZaqLoss {
  double feature_weight = 1.0;     // alpha: L_f's weight (the paper's beta)
  double activation_weight = 0.1;  // beta: L_a's weight (the paper's gamma)
  int64_t q_steps = 5;
  bool public_code_quirks = false;
  void describe(OptionVisitor& v) {
    v.option({"zaq_alpha", "ZAQ: weight of the feature discrepancy L_f"}, feature_weight);
    v.option({"zaq_beta", "ZAQ: weight of the activation term L_a in G's loss"}, activation_weight);
    v.option({"zaq_q_steps", "ZAQ: Q steps (each on fresh samples) per G step"}, q_steps);
    v.option({"zaq_public_code",
              "ZAQ: reproduce the public code's quirks: Q's batch norms in train mode (batch "
              "statistics, running statistics updated) and activation ranges never fixed"},
             public_code_quirks);
  }
  void validate() const {
    require(feature_weight >= 0 && activation_weight >= 0, "--zaq-alpha and --zaq-beta must not be negative");
    require(q_steps >= 1 && q_steps <= 100, "--zaq-q-steps must be in [1, 100], got {}", q_steps);
  }
};

struct ZaqOptions : GeneratorTrainingOptions {
  ZaqLoss zaq;
  double rho = 0.1;  // Qimera + ZAQ only

  explicit ZaqOptions(generator::GeneratorArch arch) {
    generator.arch = arch;
    generator.allowed = {arch};
    generator.conditional_bn = "off";
    // ZAQ's values (FLHonker/ZAQ-code main.py).
    loop.epochs = 300;
    schedule.iterations = 60;
    schedule.batch_size = 256;
    schedule.warmup_epochs = 0;
    schedule.lr_schedule = LrSchedule{LrSchedule::Kind::MultiStep, {100, 200}, 0.1};
    student.lr_q = 0.1;
    student.weight_decay = 5e-4;
    student.nesterov = false;
    generator_optimizer.adam_beta1 = 0.9;
  }
  void describe(OptionVisitor& v, bool with_rho) {
    GeneratorTrainingOptions::describe(v);
    zaq.describe(v);
    if (with_rho) v.option({"rho", "Qimera + ZAQ: weight of the soft-label cross-entropy terms"}, rho);
  }
  void validate() const {
    GeneratorTrainingOptions::validate();
    zaq.validate();
    require(rho >= 0, "--rho must not be negative, got {}", rho);
  }
};

/// G: -(L_o + alpha L_f) - beta L_a (+ rho CE(P, labels) when rho > 0).
Objective zaq_generator_objective(const ZaqLoss& zaq, double rho);
/// Q: L_o + alpha L_f (+ rho CE(Q, labels) when rho > 0).
Objective zaq_student_objective(const ZaqLoss& zaq, double rho);

/// The trainer of ZAQ (`additions` null) or Qimera + ZAQ.
std::unique_ptr<DataFreeTrainer> make_zaq_trainer(const ZaqOptions& o, const QimeraAdditions* additions,
                                                  models::Classifier teacher, c10::Device device);

}  // namespace qimera::methods
