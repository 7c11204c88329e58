// ZeroQ (Cai et al., CVPR 2020) exactly as baselines.md section 1: a batch of images distilled from
// near-zero noise by matching per-sample statistics at every batch norm and the input (Adam lr 0.5,
// 500 steps, plateau schedule), then min/max calibration of Q's activation ranges on them. With
// --zeroq-finetune EPOCHS, Q is then distilled from P on that image bank (how later papers often
// run "ZeroQ"; labelled so).
#include "qimera/core/error.h"
#include "qimera/methods/presets.h"
#include "qimera/methods/ptq.h"
#include "qimera/methods/registry.h"
#include "qimera/methods/zeroq.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>

namespace qimera::methods {
namespace {

struct ZeroqMethodOptions {
  quant::QuantConfig quant;
  ZeroqOptions distill;
  int64_t finetune = 0;  // epochs of distillation on the bank after calibration
  LoopOptions loop;
  DataFreeSchedule schedule;
  StudentOptimizer student;
  DistillationLoss distillation;

  ZeroqMethodOptions() {
    quant.observer.kind = quant::ObserverKind::MinMax;
    schedule.warmup_epochs = 0;
    schedule.observe_epochs = 0;  // ranges come from the calibration
  }
  void describe(OptionVisitor& v) {
    describe_quantization(v, quant);
    distill.describe(v);
    v.option({"zeroq_finetune",
              "ZeroQ: epochs of KD of Q on the distilled images after calibration (0: calibration "
              "only, as published)",
              true},
             finetune);
    loop.describe(v, /*with_epochs=*/false);
    schedule.describe(v);
    student.describe(v);
    distillation.describe(v);
  }
  void validate() const {
    quant.validate();
    distill.validate();
    require(finetune >= 0, "--zeroq-finetune must not be negative, got {}", finetune);
    if (finetune > 0) {
      auto l = loop;
      l.epochs = finetune;
      l.validate();
      schedule.validate(finetune);
      student.validate();
      distillation.validate();
      require(schedule.batch_size <= distill.batch_size * distill.batches,
              "--batch-size {} is larger than the {} distilled images", schedule.batch_size,
              distill.batch_size * distill.batches);
    }
  }
};

class Zeroq : public Method {
 public:
  void describe(OptionVisitor& v) override { o_.describe(v); }
  void validate() const override { o_.validate(); }
  const quant::QuantConfig& quantization() const override { return o_.quant; }
  bool trains() const override { return o_.finetune > 0; }

  MethodOutcome run(const MethodContext& c) override {
    for (auto& p : c.teacher->parameters()) p.set_requires_grad(false);
    const auto& spec = c.teacher->spec();
    const int64_t n = o_.distill.batch_size * o_.distill.batches;
    // On resume the bank and the calibrated Q come back from the checkpoint.
    at::Tensor bank = c.resume ? at::zeros({n, spec.in_channels, spec.image_size, spec.image_size},
                                           at::TensorOptions().device(c.device))
                               : distill_images(*c.teacher, o_.distill, c.device);
    MethodOutcome out;
    out.quantization = o_.quant;
    const auto label = "zeroq " + o_.quant.short_name();
    models::Classifier q;
    if (c.resume) {
      q = models::clone_model(*c.teacher);
      quant::convert(*q, o_.quant);
    } else {
      CalibrationOptions calibration;
      calibration.batches = o_.distill.batches;
      calibration.observer = o_.quant.observer;
      int64_t next = 0;
      q = post_training_quantize(*c.teacher, o_.quant, calibration, [&] {
        auto batch = bank.slice(0, next * o_.distill.batch_size, (next + 1) * o_.distill.batch_size);
        ++next;
        return batch;
      });
      std::optional<eval::Accuracy> test;
      if (c.test) test = eval::evaluate_model(*q, *c.test, label);
      out.rows.push_back({label, test,
                          fmt::format("min/max ranges from {} distilled images, no training", n)});
      if (test) out.summary["calibrated"] = test->to_json();
    }
    if (o_.finetune == 0) {
      out.quantized = q;
      return out;
    }
    auto loop = o_.loop;
    loop.epochs = o_.finetune;
    auto setup = make_setup(o_.quant, loop, o_.schedule, o_.student, GeneratorOptimizer{});
    DataFreeTrainer trainer(
        c.teacher, setup, [&](const models::ClassifierImpl&) { return std::make_unique<ImageBankSource>(bank); },
        Objective(), Objective("q", {{distillation(o_.distillation.temperature, o_.distillation.alpha), 1.0}}),
        c.device, q);
    auto trained = train(trainer, loop, c, label + " + fine-tuning");
    trained.rows.insert(trained.rows.begin(), out.rows.begin(), out.rows.end());
    trained.summary.update(out.summary);
    return trained;
  }

 private:
  ZeroqMethodOptions o_;
};

}  // namespace

MethodInfo zeroq_method() {
  // The short schedule's fine-tuning part (used with --zeroq-finetune); ZeroQ's calibration keeps
  // its min/max observer.
  std::vector<PresetInfo> presets{{"fmnist-short", kFmnistShortDescription,
                                   {{"iterations", 150}, {"batch_size", 64}, {"lr_q", 1e-3},
                                    {"lr_schedule", "multistep:6"}}}};
  for (const auto& s : paper_settings()) {
    presets.push_back({s.name, "ZeroQ's published settings at the bits of " + s.description,
                       {{"wbits", s.bits}, {"abits", s.bits}}});
  }
  return {"zeroq",
          "ZeroQ: images distilled from noise to match per-sample BN statistics, then min/max "
          "calibration (--zeroq-finetune EPOCHS adds KD on them)",
          [] { return std::make_unique<Zeroq>(); }, presets};
}

}  // namespace qimera::methods
