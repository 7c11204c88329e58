#include "qimera/methods/presets.h"

#include "qimera/core/error.h"

namespace qimera::methods {
namespace {

using generator::EmbeddingInit;

// The reference's schedule: 400 epochs x 200 iterations, both learning rates x0.1 at 100/200/300,
// its EMA observer (800 unfixed updates let it settle), DM off (its command-line default).
void reference_common(DataFreeOptions& o) {
  o.method = Method::Qimera;
  o.epochs = 400;
  o.iterations = 200;
  o.schedule = LrSchedule{LrSchedule::Kind::MultiStep, {100, 200, 300}, 0.1};
  o.lr_g = 1e-3;
  o.adam_beta1 = 0.5;
  o.adam_beta2 = 0.999;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.bns_weight = 0.1;
  o.temperature = 20;
  o.alpha = 1;
  o.disentangle = false;
  o.disentangle_dim = 100;
  o.quant.observer.kind = quant::ObserverKind::ReferenceEma;
}

// One reference run script: the data set's batch size, Q learning rate and warm-up, the setting's
// bits, K, p and embedding initialization.
struct Script {
  int64_t batch_size;
  double lr_q;
  int64_t warmup_epochs;
};
constexpr Script kCifar{200, 1e-4, 4};
constexpr Script kImagenet{16, 1e-6, 50};

std::function<void(DataFreeOptions&)> reference(const Script& script, int bits, int64_t k, double p,
                                                EmbeddingInit init) {
  return [=](DataFreeOptions& o) {
    reference_common(o);
    o.quant.weight_bits = o.quant.act_bits = bits;
    o.batch_size = script.batch_size;
    o.lr_q = script.lr_q;
    o.warmup_epochs = script.warmup_epochs;
    o.observe_epochs = 4;
    o.superposition = {k, p};
    o.embedding_init = init;
  };
}

}  // namespace

const std::vector<Preset>& data_free_presets() {
  static const std::vector<Preset> presets = {
      {"fmnist-short",
       "Short schedule for the bundled Fashion-MNIST ResNet-20 (~12 minutes on 2 cores): 8 epochs x "
       "150 iterations of batch 64; 2 warm-up epochs train only the generator while activation "
       "ranges follow its images (300 updates, per-batch 99.99th percentiles averaged); Q's "
       "learning rate 1e-3, x0.1 at epoch 6; K = 2, p = 0.4",
       [](DataFreeOptions& o) {
         o.method = Method::Qimera;
         o.epochs = 8;
         o.iterations = 150;
         o.batch_size = 64;
         o.warmup_epochs = 2;
         o.observe_epochs = 2;
         o.lr_g = 1e-3;
         o.lr_q = 1e-3;
         o.schedule = LrSchedule{LrSchedule::Kind::MultiStep, {6}, 0.1};
         o.superposition = {2, 0.4};
         o.quant.observer.kind = quant::ObserverKind::Percentile;
       }},
      {"reference-cifar10-4w4a", "Reference run script: CIFAR-10 ResNet-20 4w4a, K=2 p=0.4, random embeddings",
       reference(kCifar, 4, 2, 0.4, EmbeddingInit::Random)},
      {"reference-cifar10-5w5a", "Reference run script: CIFAR-10 ResNet-20 5w5a, K=2 p=0.4, random embeddings",
       reference(kCifar, 5, 2, 0.4, EmbeddingInit::Random)},
      {"reference-cifar100-4w4a", "Reference run script: CIFAR-100 ResNet-20 4w4a, K=10 p=0.4, EEI",
       reference(kCifar, 4, 10, 0.4, EmbeddingInit::Extracted)},
      {"reference-cifar100-5w5a", "Reference run script: CIFAR-100 ResNet-20 5w5a, K=50 p=0.4, EEI",
       reference(kCifar, 5, 50, 0.4, EmbeddingInit::Extracted)},
      {"reference-imagenet-resnet18-4w4a", "Reference run script: ImageNet ResNet-18 4w4a, K=500 p=0.4",
       reference(kImagenet, 4, 500, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-resnet18-5w5a", "Reference run script: ImageNet ResNet-18 5w5a, K=100 p=0.4",
       reference(kImagenet, 5, 100, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-resnet50-4w4a", "Reference run script: ImageNet ResNet-50 4w4a, K=500 p=0.7, EEI",
       reference(kImagenet, 4, 500, 0.7, EmbeddingInit::Extracted)},
      {"reference-imagenet-resnet50-5w5a", "Reference run script: ImageNet ResNet-50 5w5a, K=100 p=0.7, EEI",
       reference(kImagenet, 5, 100, 0.7, EmbeddingInit::Extracted)},
      {"reference-imagenet-mobilenetv2-4w4a", "Reference run script: ImageNet MobileNetV2 4w4a, K=100 p=0.4",
       reference(kImagenet, 4, 100, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-mobilenetv2-5w5a", "Reference run script: ImageNet MobileNetV2 5w5a, K=100 p=0.4",
       reference(kImagenet, 5, 100, 0.4, EmbeddingInit::Random)},
  };
  return presets;
}

const Preset& find_preset(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : data_free_presets()) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  fail("unknown preset '{}': expected one of {}", name, fmt::join(names, ", "));
}

}  // namespace qimera::methods
