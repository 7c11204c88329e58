// The option groups the data-free methods assemble, each described once (core/options.h): every
// method's options struct is a selection of these, so a flag means the same thing in every method.
#pragma once

#include "qimera/core/options.h"
#include "qimera/generator/architecture.h"
#include "qimera/generator/latents.h"
#include "qimera/methods/image_source.h"
#include "qimera/methods/run_loop.h"
#include "qimera/methods/schedule.h"
#include "qimera/models/precision.h"
#include "qimera/quant/convert.h"

#include <string>
#include <vector>

namespace qimera::methods {

/// Bits, observer, straight-through estimator and per-layer overrides (--wbits, --abits, ...).
void describe_quantization(OptionVisitor& v, quant::QuantConfig& config);

/// The data-free schedule inside the epochs (the epochs themselves are LoopOptions').
struct DataFreeSchedule {
  int64_t iterations = 200;  // per epoch
  int64_t batch_size = 200;
  int64_t warmup_epochs = 4;   // Q is not updated during these epochs (G is)
  int64_t observe_epochs = 4;  // activation ranges follow the data during these epochs, then fixed
  LrSchedule lr_schedule{LrSchedule::Kind::MultiStep, {100, 200, 300}, 0.1};  // both learning rates

  void describe(OptionVisitor& v);
  void validate(int64_t epochs) const;
};

/// Activation ranges taken from another quantized model of the same teacher and kept for the whole
/// run, instead of observed on the generator's images. At few bits a range observed on a
/// generator's images can break Q by itself (Fashion-MNIST 3w3a: ZAQ's adversarial images set the
/// first block's range to 4.15 where PTQ on noise set 1.64, and that range alone took the teacher's
/// 3-bit weights from 78% to 22%); this lets such a method train on ranges known to work.
struct FixedActRanges {
  std::string from;  // a quantized.json from qimera quantize; empty: the ranges are observed
  void describe(OptionVisitor& v);
  /// Names the file when it is missing, and the observe epochs when there are any: ranges taken
  /// from a file are fixed, so a schedule that would observe them contradicts it.
  void validate(const DataFreeSchedule& schedule) const;
};

/// Q's optimizer: SGD.
struct StudentOptimizer {
  double lr_q = 1e-4;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool nesterov = true;
  void describe(OptionVisitor& v);
  void validate() const;
};

/// G's optimizer: Adam.
struct GeneratorOptimizer {
  double lr_g = 1e-3;
  double adam_beta1 = 0.5;
  double adam_beta2 = 0.999;
  void describe(OptionVisitor& v);
  void validate() const;
};

/// Which generator architecture, among those a method allows, and its conditional batch norm.
struct GeneratorChoice {
  generator::GeneratorArch arch = generator::GeneratorArch::Qimera;
  std::vector<generator::GeneratorArch> allowed;  // the method's choices (not an option)
  std::string conditional_bn = "auto";            // auto (>= 64 pixels), on, off
  void describe(OptionVisitor& v);
  void validate() const;
  /// Whether the body uses conditional BN for an image of `image_size` pixels.
  bool conditional_for(int64_t image_size) const;
};

/// How the networks compute (not what): the layout of their activations and the precision of G's
/// and P's arithmetic.
struct ComputeOptions {
  std::string memory_format = "contiguous";  // contiguous (NCHW) or channels-last (NHWC)
  std::string precision = "fp32";            // fp32, bf16 (G and P) or bf16-generator (G only)
  void describe(OptionVisitor& v);
  void validate() const;
  bool channels_last() const { return memory_format == "channels-last"; }
  models::Precision generator_precision() const;
  models::Precision teacher_precision() const;
};

/// What every method that trains a generator beside Q has (GDFQ's family and ZAQ's), described in
/// this order ahead of each method's own options.
struct GeneratorTrainingOptions {
  quant::QuantConfig quant;
  LoopOptions loop;
  DataFreeSchedule schedule;
  FixedActRanges act_ranges;
  StudentOptimizer student;
  GeneratorOptimizer generator_optimizer;
  GeneratorChoice generator;
  ComputeOptions compute;

  void describe(OptionVisitor& v);
  void validate() const;
};

/// GDFQ's generator loss: CE(P, labels) + bns_weight BNS.
struct GdfqGeneratorLoss {
  double bns_weight = 0.1;
  void describe(OptionVisitor& v);
  void validate() const;
};

/// GDFQ's student loss: KD(T, alpha) + CE(Q, labels).
struct DistillationLoss {
  double temperature = 20;
  double alpha = 1;
  void describe(OptionVisitor& v);
  void validate() const;
};

/// Qimera's additions: superposed embeddings (SE), the disentanglement mapping (DM) and extracted
/// embedding initialization (EEI).
struct QimeraAdditions {
  generator::SuperpositionOptions superposition{2, 0.4};
  bool dm = false;  // the reference's scripts leave it off; the paper's tables use it
  int64_t dm_dim = 100;
  generator::EmbeddingInit embedding_init = generator::EmbeddingInit::Random;
  bool freeze_embeddings = false;
  void describe(OptionVisitor& v);
  void validate() const;
  /// Sets DM, EEI and freezing on generator options (the embedding table is filled by the caller).
  void apply(generator::GeneratorOptions& options) const;
};

/// Real images mixed into every Q batch (the paper's Table 1: synthetic samples plus a few real
/// "confusing" or "unconfusing" ones): a safetensors file with "images" [N, C, S, S] (preprocessed
/// like the teacher's inputs) and "labels" int64 [N].
struct RealSamplesGroup {
  std::string path;           // empty: none
  int64_t per_batch = 0;      // 0: ceil(N / iterations), so the whole set is seen once per epoch
  void describe(OptionVisitor& v);
  void validate() const;
};

/// Mixup / Cutmix over GDFQ's images.
struct MixingGroup {
  MixingOptions mixing;
  void describe(OptionVisitor& v);
  void validate() const { mixing.validate(); }
};

}  // namespace qimera::methods
