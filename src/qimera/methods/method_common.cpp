// Helpers the method files share (registry.h).
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/methods/registry.h"

#include <fmt/format.h>

namespace qimera::methods {

generator::Generator build_generator(const GeneratorChoice& choice, const QimeraAdditions* additions,
                                     const models::ClassifierImpl& teacher) {
  const auto& spec = teacher.spec();
  auto options = generator::generator_options(
      choice.arch, {spec.num_classes, spec.image_size, spec.in_channels, teacher.feature_dim(),
                    choice.conditional_for(spec.image_size)});
  if (additions) {
    require(generator::info(choice.arch).superposition,
            "generator '{}' does not take superposed embeddings, DM or EEI",
            generator::to_string(choice.arch));
    additions->apply(options);
  }
  generator::Generator g(options);
  if (options.embedding_init != generator::EmbeddingInit::Random) {
    g->init_embeddings_from(teacher.classifier_weight().detach());
  }
  return g;
}

DataFreeSetup make_setup(const quant::QuantConfig& quant, const LoopOptions& loop,
                         const DataFreeSchedule& schedule, const StudentOptimizer& student,
                         const GeneratorOptimizer& generator, IterationPlan plan) {
  DataFreeSetup s;
  s.quant = quant;
  s.epochs = loop.epochs;
  s.schedule = schedule;
  s.student = student;
  s.generator = generator;
  s.plan = plan;
  return s;
}

DataFreeSetup make_setup(const GeneratorTrainingOptions& o, const DataFreeSchedule& schedule,
                         IterationPlan plan) {
  auto s = make_setup(o.quant, o.loop, schedule, o.student, o.generator_optimizer, plan);
  s.act_ranges_from = o.act_ranges.from;
  s.channels_last = o.compute.channels_last();
  s.generator_precision = o.compute.generator_precision();
  s.teacher_precision = o.compute.teacher_precision();
  return s;
}

MethodOutcome train(DataFreeTrainer& trainer, const LoopOptions& loop, const MethodContext& context,
                    const std::string& label) {
  MethodOutcome out;
  write_json(context.folder.dir / "parts.json", trainer.parts());
  out.run = run_epochs(trainer, loop, context.folder, context.resume, context.test, context.probe);
  out.quantized = trainer.quantized();
  out.quantization = trainer.setup().quant;
  const auto& run = *out.run;
  out.rows.push_back({label, run.final_epoch->test, fmt::format("final epoch ({})", run.final_epoch->epoch)});
  if (run.best_epoch) {
    out.rows.push_back({label, run.best_epoch->test,
                        fmt::format("best epoch ({}), selected on the test set", run.best_epoch->epoch)});
  }
  out.summary["final_epoch"] = run.final_epoch->to_json();
  if (run.best_epoch) out.summary["best_epoch_selected_on_test_set"] = run.best_epoch->to_json();
  out.summary["seconds_this_session"] = run.seconds;
  out.summary["seconds_all_sessions"] = run.seconds_all_sessions;
  out.summary["collapses"] = run.collapses;
  return out;
}

}  // namespace qimera::methods
