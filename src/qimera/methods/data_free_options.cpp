#include "qimera/methods/data_free_options.h"

#include "qimera/core/error.h"
#include "qimera/models/precision.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

namespace qimera::methods {
namespace {

std::string format_override(const quant::LayerOverride& o) {
  const int w = o.weight_bits.value_or(-1), a = o.act_bits.value_or(-1);
  if (w == 0 && a == 0) return o.pattern + "=float";
  if (w == a) return fmt::format("{}={}", o.pattern, w);
  return fmt::format("{}={}x{}", o.pattern, w, a);
}

}  // namespace

void describe_quantization(OptionVisitor& v, quant::QuantConfig& c) {
  v.option({"wbits", "Weight bits (2-8)"}, c.weight_bits);
  v.option({"abits", "Activation bits (2-8)"}, c.act_bits);
  v.option({"observer",
            "Activation range observer: ema (bias-corrected), reference-ema (exact reproduction of "
            "the reference, needs ~200 updates), minmax, percentile, mse (the clipping with the "
            "least squared quantization error per batch; for few bits)"},
           TextValue{[&c] { return quant::to_string(c.observer.kind); },
                     [&c](const std::string& s) { c.observer.kind = quant::parse_observer(s); }});
  v.option({"observer_percentile", "Percentile observer: the high percentile (low = 100 - it)"},
           c.observer.percentile);
  v.option({"ste", "Straight-through gradient: unclipped (reference) or clipped"},
           TextValue{[&c] { return quant::to_string(c.ste); },
                     [&c](const std::string& s) { c.ste = quant::parse_ste(s); }});
  v.option({"layer",
            "Per-layer override PATTERN=BITS, PATTERN=WxA or PATTERN=float; PATTERN is a glob on "
            "module names or @first / @last (repeatable, last match wins)"},
           TextListValue{[&c] {
                           std::vector<std::string> out;
                           for (const auto& o : c.overrides) out.push_back(format_override(o));
                           return out;
                         },
                         [&c](const std::vector<std::string>& texts) {
                           c.overrides.clear();
                           for (const auto& t : texts) c.overrides.push_back(quant::parse_layer_override(t));
                         }});
}

void DataFreeSchedule::describe(OptionVisitor& v) {
  v.option({"iterations", "Iterations per epoch"}, iterations);
  v.option({"batch_size", "Synthetic batch size"}, batch_size);
  v.option({"warmup_epochs", "Epochs at the start that do not update Q (G trains)"}, warmup_epochs);
  v.option({"observe_epochs",
            "Epochs at the start during which activation ranges follow the data (then fixed)"},
           observe_epochs);
  v.option({"lr_schedule", "Schedule of both learning rates: constant, cosine, multistep:E1,E2,..."},
           TextValue{[this] { return lr_schedule.to_string(); },
                     [this](const std::string& s) {
                       const auto parsed = LrSchedule::parse(s, 0.1);
                       lr_schedule.kind = parsed.kind;
                       lr_schedule.milestones = parsed.milestones;
                     }});
  v.option({"lr_gamma", "Multi-step decay factor of both learning rates"}, lr_schedule.gamma);
}

void DataFreeSchedule::validate(int64_t epochs) const {
  require(iterations >= 1, "--iterations must be at least 1, got {}", iterations);
  // A batch holds the generator's activations several times over: beyond this it cannot fit.
  require(batch_size >= 1 && batch_size <= 65536, "--batch-size must be in [1, 65536], got {}",
          batch_size);
  require(warmup_epochs >= 0 && warmup_epochs <= epochs,
          "--warmup-epochs {} must be in [0, --epochs = {}]", warmup_epochs, epochs);
  require(observe_epochs >= 0 && observe_epochs <= epochs,
          "--observe-epochs {} must be in [0, --epochs = {}]", observe_epochs, epochs);
  require(lr_schedule.gamma > 0 && lr_schedule.gamma <= 1, "--lr-gamma must be in (0, 1], got {}",
          lr_schedule.gamma);
}

void FixedActRanges::describe(OptionVisitor& v) {
  v.option({"act_ranges_from",
            "A quantized.json from qimera quantize (e.g. --method ptq) whose activation ranges Q "
            "takes at the start and keeps (with --observe-epochs 0): for a generator whose images "
            "give ranges that break Q at few bits. Empty: the ranges are observed"},
           from);
}

void FixedActRanges::validate(const DataFreeSchedule& schedule) const {
  if (from.empty()) return;
  require(std::filesystem::is_regular_file(from),
          "--act-ranges-from: {} does not exist (expected a quantized.json from qimera quantize)",
          from);
  require(schedule.observe_epochs == 0,
          "--act-ranges-from {} fixes the activation ranges for the whole run, but --observe-epochs "
          "is {} (the preset's or yours): pass --observe-epochs 0 with it",
          from, schedule.observe_epochs);
}

void StudentOptimizer::describe(OptionVisitor& v) {
  v.option({"lr_q", "Quantized model's learning rate (SGD)"}, lr_q);
  v.option({"momentum", "Quantized model's SGD momentum"}, momentum);
  v.option({"weight_decay", "Quantized model's weight decay"}, weight_decay);
  v.option({"nesterov", "Nesterov momentum for the quantized model"}, nesterov);
}

void StudentOptimizer::validate() const {
  require(lr_q > 0, "--lr-q must be positive, got {}", lr_q);
  require(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), got {}", momentum);
  require(weight_decay >= 0, "--weight-decay must not be negative, got {}", weight_decay);
  require(!nesterov || momentum > 0, "Nesterov momentum needs --momentum > 0 (or --no-nesterov)");
}

void GeneratorOptimizer::describe(OptionVisitor& v) {
  v.option({"lr_g", "Generator's learning rate (Adam)"}, lr_g);
  v.option({"adam_beta1", "Generator's Adam beta1"}, adam_beta1);
  v.option({"adam_beta2", "Generator's Adam beta2"}, adam_beta2);
}

void GeneratorOptimizer::validate() const {
  require(lr_g > 0, "--lr-g must be positive, got {}", lr_g);
  require(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1,
          "--adam-beta1 and --adam-beta2 must be in [0, 1), got {} and {}", adam_beta1, adam_beta2);
}

void GeneratorChoice::describe(OptionVisitor& v) {
  v.option({"generator",
            "Generator architecture: qimera, gdfq (as published), zaq, zaq-embedding; autorecon "
            "is listed but its searched cell is not published (each method allows some)"},
           TextValue{[this] { return std::string(generator::to_string(arch)); },
                     [this](const std::string& s) { arch = generator::parse_generator_arch(s); }});
  v.option({"generator_cbn",
            "Categorical conditional BN in the generator: auto (on for inputs >= 64 pixels, as the "
            "reference's ImageNet generator), on, off"},
           conditional_bn);
}

void GeneratorChoice::validate() const {
  std::vector<std::string> names;
  for (auto a : allowed) names.emplace_back(generator::to_string(a));
  require(std::find(allowed.begin(), allowed.end(), arch) != allowed.end(),
          "--generator {} is not available for this method (choose from: {})",
          generator::to_string(arch), fmt::join(names, ", "));
  require(conditional_bn == "auto" || conditional_bn == "on" || conditional_bn == "off",
          "--generator-cbn {}: expected auto, on or off", conditional_bn);
}

bool GeneratorChoice::conditional_for(int64_t image_size) const {
  return conditional_bn == "auto" ? image_size >= 64 : conditional_bn == "on";
}

void GdfqGeneratorLoss::describe(OptionVisitor& v) {
  v.option({"bns_weight", "Weight of the batch-norm statistics loss in the generator's loss"},
           bns_weight);
}

void GdfqGeneratorLoss::validate() const {
  require(bns_weight >= 0, "--bns-weight must not be negative, got {}", bns_weight);
}

void DistillationLoss::describe(OptionVisitor& v) {
  v.option({"temperature", "Distillation temperature T"}, temperature);
  v.option({"alpha", "Distillation weight (times T^2)"}, alpha);
}

void DistillationLoss::validate() const {
  require(temperature > 0, "--temperature must be positive, got {}", temperature);
  require(alpha >= 0, "--alpha must not be negative, got {}", alpha);
}

void QimeraAdditions::describe(OptionVisitor& v) {
  v.option({"se_k", "Superposed embeddings: classes mixed per superposed sample (K)"},
           superposition.k);
  v.option({"se_p", "Superposed embeddings: share of superposed batches (p; 0 = GDFQ batches)"},
           superposition.p);
  v.option({"dm", "Disentanglement mapping layer on (off in the reference's scripts)"}, dm);
  v.option({"dm_dim", "Output width d of the disentanglement mapping"}, dm_dim);
  v.option({"embedding_init", "Class embeddings: random, extracted (EEI: the teacher's last layer), or extracted-scaled (EEI scaled to a root mean square of 1 per entry, like the random ones; not in the paper)"},
           TextValue{[this] { return std::string(generator::to_string(embedding_init)); },
                     [this](const std::string& s) { embedding_init = generator::parse_embedding_init(s); }});
  v.option({"freeze_embeddings", "Keep the class embeddings fixed"}, freeze_embeddings);
}

void QimeraAdditions::validate() const {
  superposition.validate();
  require(superposition.k >= 1, "--se-k must be at least 1, got {}", superposition.k);
  require(!dm || dm_dim >= 1, "--dm-dim must be at least 1, got {}", dm_dim);
}

void QimeraAdditions::apply(generator::GeneratorOptions& o) const {
  o.disentangle = dm;
  o.disentangle_dim = dm_dim;
  o.embedding_init = embedding_init;
  o.freeze_embeddings = freeze_embeddings;
}

void RealSamplesGroup::describe(OptionVisitor& v) {
  v.option({"real_samples",
            "Real images added to every Q batch (Table 1): a safetensors file with 'images' [N, C, H, "
            "W] preprocessed like the teacher's inputs and int64 'labels' [N]; empty: synthetic "
            "images only"},
           path);
  v.option({"real_per_batch", "Real images per Q batch (0: the whole set once per epoch)"}, per_batch);
}

void RealSamplesGroup::validate() const {
  require(per_batch >= 0, "--real-per-batch must not be negative, got {}", per_batch);
  require(!path.empty() || per_batch == 0, "--real-per-batch needs --real-samples");
}

void MixingGroup::describe(OptionVisitor& v) {
  v.option({"mix_alpha", "Mixing ratio lambda ~ Beta(alpha, alpha) (not published: 1, as the "
                         "augmentations' own code)"},
           mixing.alpha);
  v.option({"mix_prob", "Share of mixed batches (not published: Mixup 1, Cutmix 0.5 as CutMix's CIFAR "
                        "setting)"},
           mixing.probability);
  v.option({"mix_generator_loss",
            "What the generator's loss sees: mixed images (default; a pixel-space analogue of "
            "superposition) or plain ones (not published)"},
           TextValue{[this] { return std::string(mixing.generator_sees_mixed ? "mixed" : "plain"); },
                     [this](const std::string& s) {
                       require(s == "mixed" || s == "plain", "--mix-generator-loss {}: expected mixed or plain", s);
                       mixing.generator_sees_mixed = s == "mixed";
                     }});
}

void ComputeOptions::describe(OptionVisitor& v) {
  v.option({"memory_format",
            "Layout of the networks' activations: contiguous (NCHW) or channels-last (NHWC, "
            "faster oneDNN convolutions on CPU; sums in another order, so results differ in the "
            "last bits)"},
           memory_format);
  v.option({"precision",
            "Arithmetic of the networks that make and score images: fp32; bf16 (the generator's "
            "and the teacher's convolutions and linear layers in bfloat16 by autocast, on CPU and "
            "CUDA); bf16-generator (the generator's only). Q (fake quantization, its updates), "
            "batch-norm statistics, losses and optimizer state stay float32"},
           precision);
}

models::Precision ComputeOptions::generator_precision() const {
  return precision == "fp32" ? models::Precision::Float32 : models::Precision::BFloat16;
}

models::Precision ComputeOptions::teacher_precision() const {
  return precision == "bf16" ? models::Precision::BFloat16 : models::Precision::Float32;
}

void ComputeOptions::validate() const {
  require(memory_format == "contiguous" || memory_format == "channels-last",
          "--memory-format {}: expected contiguous or channels-last", memory_format);
  require(precision == "fp32" || precision == "bf16" || precision == "bf16-generator",
          "--precision {}: expected fp32, bf16 or bf16-generator", precision);
}

void GeneratorTrainingOptions::describe(OptionVisitor& v) {
  describe_quantization(v, quant);
  loop.describe(v);
  schedule.describe(v);
  act_ranges.describe(v);
  student.describe(v);
  generator_optimizer.describe(v);
  generator.describe(v);
  compute.describe(v);
}

void GeneratorTrainingOptions::validate() const {
  quant.validate();
  loop.validate();
  schedule.validate(loop.epochs);
  act_ranges.validate(schedule);
  student.validate();
  generator_optimizer.validate();
  generator.validate();
  compute.validate();
}

}  // namespace qimera::methods
