// The parts GDFQ, GDFQ + Mixup / Cutmix and Qimera share: their options, their objectives
// (G: CE(P, labels) + bns_weight BNS; Q: KD + CE(Q, labels)), their presets and their run.
#pragma once

#include "qimera/methods/presets.h"
#include "qimera/methods/registry.h"

#include <functional>

namespace qimera::methods {

struct GdfqOptions : GeneratorTrainingOptions {
  GdfqGeneratorLoss generator_loss;
  DistillationLoss distillation;
  RealSamplesGroup real;

  explicit GdfqOptions(generator::GeneratorArch arch, std::vector<generator::GeneratorArch> allowed);
  void describe(OptionVisitor& v);
  void validate() const;
};

Objective gdfq_generator_objective(const GdfqOptions& o);
Objective gdfq_student_objective(const GdfqOptions& o);

/// Real images and their one-hot targets from a safetensors file ("images" [N, C, S, S] float,
/// "labels" int64 [N]) checked against the teacher's input; errors name the file.
std::pair<at::Tensor, at::Tensor> read_real_samples(const std::string& path,
                                                     const models::ModelSpec& spec, c10::Device device);

/// The trainer of `o`, with Qimera's `additions` and `mixing` when given (tests and benchmarks use
/// it directly).
std::unique_ptr<DataFreeTrainer> make_gdfq_family_trainer(const GdfqOptions& o,
                                                          const QimeraAdditions* additions,
                                                          const MixingOptions* mixing,
                                                          models::Classifier teacher,
                                                          c10::Device device);

/// Trains Q with `o`'s generator, superposed by `additions` (Qimera) and mixed by `mixing`
/// (Mixup / Cutmix) when given.
MethodOutcome run_gdfq_family(const GdfqOptions& o, const QimeraAdditions* additions,
                              const MixingOptions* mixing, const MethodContext& context,
                              const std::string& label);

/// fmnist-short and every paper setting: the schedule, plus `extra(setting)` (nullptr for
/// fmnist-short) for the method's own values.
std::vector<PresetInfo> gdfq_family_presets(
    const std::function<nlohmann::json(const PaperSetting*)>& extra);

}  // namespace qimera::methods
