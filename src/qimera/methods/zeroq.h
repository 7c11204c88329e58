// ZeroQ's distilled data (Cai et al., CVPR 2020; baselines.md section 1): images optimized from
// near-zero noise so that, per sample, the mean and standard deviation of every batch-norm layer's
// input match that layer's running statistics, and the input's match 0 and 1.
#pragma once

#include "qimera/core/options.h"
#include "qimera/eval/agreement.h"
#include "qimera/models/classifier.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace torch::optim {
class Optimizer;
}

namespace qimera::methods {

struct ZeroqOptions {
  int64_t iterations = 500;   // Adam steps per batch
  double lr = 0.5;
  int64_t batch_size = 64;    // the public run script's (the code's default is 32)
  int64_t batches = 1;        // distilled batches (each optimized on its own)
  double plateau_factor = 0.1;
  int64_t plateau_patience = 100;
  double min_lr = 1e-4;
  bool batch_statistics = false;  // GDFQ-style batch statistics instead of ZeroQ's per-sample ones
  void describe(OptionVisitor& v);
  void validate() const;
};

/// ZeroQ's start: pixels uniform on {0..254}, then (v - 127.5) / 5418.75 (within ~0.024 of zero),
/// [n, C, S, S] for the model's input shape, from LibTorch's default CPU generator.
at::Tensor zeroq_start_images(const models::ModelSpec& spec, int64_t n, c10::Device device);

/// ZeroQ's loss on a traced forward of `images`: over every BN input and the input itself, the
/// squared L2 distance between target and statistic summed over batch and channels, divided by the
/// batch; targets are (running_mean, sqrt(running_var + 1e-6)) and (0, 1) for the input; statistics
/// per sample over the spatial positions (std = sqrt(unbiased variance + 1e-6)), or over the whole
/// batch with `batch_statistics`.
at::Tensor zeroq_loss(const models::ForwardTrace& trace, const at::Tensor& images,
                      bool batch_statistics = false);

/// PyTorch's ReduceLROnPlateau in 'min' mode with a relative threshold of 1e-4 and no cooldown:
/// after more than `patience` steps without a new best, the rate is multiplied by `factor` (not
/// below `min_lr`).
class ReduceLrOnPlateau {
 public:
  ReduceLrOnPlateau(torch::optim::Optimizer& optimizer, double factor, int64_t patience, double min_lr);
  void step(double metric);
  double lr() const { return lr_; }

 private:
  torch::optim::Optimizer& optimizer_;
  double factor_, min_lr_, best_;
  int64_t patience_, bad_ = 0;
  double lr_;
};

/// Distills options.batches batches for `teacher` (eval mode, frozen), with a progress bar. With
/// `targets` (int64 [batches * batch_size] class indices, not in ZeroQ) the teacher's cross-entropy
/// towards each image's class is added to ZeroQ's loss: images the teacher assigns to chosen
/// classes, e.g. a class-balanced probe set (qimera check).
at::Tensor distill_images(models::ClassifierImpl& teacher, const ZeroqOptions& options, c10::Device device,
                          const at::Tensor& targets = {});

/// The probe's size for qimera check and a run's probe_agreement: 2 batches of 64 images at
/// ZeroQ's 500 steps. 128 images tell a broken model (agreement near chance) from a working one; the
/// binomial error at 90% agreement is about +-3 points (one std).
ZeroqOptions probe_options();

/// A probe set for checking a quantized model against `teacher` without labelled data: with
/// `class_balanced`, options.batches * options.batch_size images distilled towards classes
/// 0, 1, ..., classes-1, 0, 1, ... in turn (`targets`); otherwise ZeroQ's images (no targets).
struct Probe {
  at::Tensor images;
  at::Tensor targets;  // undefined without class_balanced
};
Probe distill_probe(models::ClassifierImpl& teacher, const ZeroqOptions& options, bool class_balanced,
                    c10::Device device);

/// The class-balanced probe a training run watches after every epoch (probe_agreement, collapse.h)
/// with the teacher's logits on it. Drawn from LibTorch's default CPU generator seeded with `seed`,
/// whose state is restored afterwards: the run's random stream, and so its result, is the same with
/// or without a probe, and a resumed run distills the same probe again. The teacher's parameters
/// and mode are as before when it returns.
eval::ProbeSet run_probe(models::ClassifierImpl& teacher, const ZeroqOptions& options, uint64_t seed,
                         c10::Device device);

}  // namespace qimera::methods
