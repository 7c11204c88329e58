// The methods the registry lists (one file each) and the small helpers they share.
#pragma once

#include "qimera/generator/architecture.h"
#include "qimera/methods/data_free.h"
#include "qimera/methods/data_free_options.h"
#include "qimera/methods/method.h"

namespace qimera::methods {

MethodInfo ptq_method();          // method_ptq.cpp
MethodInfo zeroq_method();        // method_zeroq.cpp
MethodInfo gdfq_method();         // method_gdfq.cpp
MethodInfo gdfq_mixup_method();   // method_mixing.cpp
MethodInfo gdfq_cutmix_method();  // method_mixing.cpp
MethodInfo zaq_method();          // method_zaq.cpp
MethodInfo qimera_method();       // method_qimera.cpp
MethodInfo qimera_zaq_method();   // method_zaq.cpp

/// Builds `choice`'s generator for `teacher` (Qimera's additions applied when given), with EEI's
/// embeddings from the teacher's last layer when asked.
generator::Generator build_generator(const GeneratorChoice& choice, const QimeraAdditions* additions,
                                     const models::ClassifierImpl& teacher);

/// Runs a data-free trainer's epochs in the context's folder and turns the result into the
/// outcome's rows ("final epoch", "best epoch, selected on the test set") and summary.
MethodOutcome train(DataFreeTrainer& trainer, const LoopOptions& loop, const MethodContext& context,
                    const std::string& label);

/// The data-free setup from the shared option groups.
DataFreeSetup make_setup(const quant::QuantConfig& quant, const LoopOptions& loop,
                         const DataFreeSchedule& schedule, const StudentOptimizer& student,
                         const GeneratorOptimizer& generator, IterationPlan plan = {});
/// The same from the options every generator-training method has, with `schedule` (a method may
/// adjust the described one) and the compute layout.
DataFreeSetup make_setup(const GeneratorTrainingOptions& o, const DataFreeSchedule& schedule,
                         IterationPlan plan = {});

}  // namespace qimera::methods
