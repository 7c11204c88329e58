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

std::function<void(DataFreeOptions&)> cifar(int bits, int64_t k, EmbeddingInit init) {
  return [=](DataFreeOptions& o) {
    reference_common(o);
    o.quant.weight_bits = o.quant.act_bits = bits;
    o.batch_size = 200;
    o.lr_q = 1e-4;
    o.warmup_epochs = 4;
    o.observe_epochs = 4;
    o.superposition = {k, 0.4};
    o.embedding_init = init;
  };
}

std::function<void(DataFreeOptions&)> imagenet(int bits, int64_t k, double p, EmbeddingInit init) {
  return [=](DataFreeOptions& o) {
    reference_common(o);
    o.quant.weight_bits = o.quant.act_bits = bits;
    o.batch_size = 16;
    o.lr_q = 1e-6;
    o.warmup_epochs = 50;
    o.observe_epochs = 4;
    o.superposition = {k, p};
    o.embedding_init = init;
  };
}

}  // namespace

const std::vector<Preset>& data_free_presets() {
  static const std::vector<Preset> presets = {
      {"fmnist-short",
       "Short schedule for the bundled Fashion-MNIST ResNet-20 (~15 minutes on 2 cores): 8 epochs x "
       "100 iterations of batch 64, 1 warm-up epoch, ranges observed for 2 epochs (200 updates, "
       "bias-corrected EMA), Q learning rate 1e-3 decayed x0.1 at epoch 6; K = 2, p = 0.4",
       [](DataFreeOptions& o) {
         o.method = Method::Qimera;
         o.epochs = 8;
         o.iterations = 100;
         o.batch_size = 64;
         o.warmup_epochs = 1;
         o.observe_epochs = 2;
         o.lr_g = 1e-3;
         o.lr_q = 1e-3;
         o.schedule = LrSchedule{LrSchedule::Kind::MultiStep, {6}, 0.1};
         o.superposition = {2, 0.4};
         o.quant.observer.kind = quant::ObserverKind::Ema;
       }},
      {"reference-cifar10-4w4a", "Reference run script: CIFAR-10 ResNet-20 4w4a, K=2 p=0.4, random embeddings",
       cifar(4, 2, EmbeddingInit::Random)},
      {"reference-cifar10-5w5a", "Reference run script: CIFAR-10 ResNet-20 5w5a, K=2 p=0.4, random embeddings",
       cifar(5, 2, EmbeddingInit::Random)},
      {"reference-cifar100-4w4a", "Reference run script: CIFAR-100 ResNet-20 4w4a, K=10 p=0.4, EEI",
       cifar(4, 10, EmbeddingInit::Extracted)},
      {"reference-cifar100-5w5a", "Reference run script: CIFAR-100 ResNet-20 5w5a, K=50 p=0.4, EEI",
       cifar(5, 50, EmbeddingInit::Extracted)},
      {"reference-imagenet-resnet18-4w4a", "Reference run script: ImageNet ResNet-18 4w4a, K=500 p=0.4",
       imagenet(4, 500, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-resnet18-5w5a", "Reference run script: ImageNet ResNet-18 5w5a, K=100 p=0.4",
       imagenet(5, 100, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-resnet50-4w4a", "Reference run script: ImageNet ResNet-50 4w4a, K=500 p=0.7, EEI",
       imagenet(4, 500, 0.7, EmbeddingInit::Extracted)},
      {"reference-imagenet-resnet50-5w5a", "Reference run script: ImageNet ResNet-50 5w5a, K=100 p=0.7, EEI",
       imagenet(5, 100, 0.7, EmbeddingInit::Extracted)},
      {"reference-imagenet-mobilenetv2-4w4a", "Reference run script: ImageNet MobileNetV2 4w4a, K=100 p=0.4",
       imagenet(4, 100, 0.4, EmbeddingInit::Random)},
      {"reference-imagenet-mobilenetv2-5w5a", "Reference run script: ImageNet MobileNetV2 5w5a, K=100 p=0.4",
       imagenet(5, 100, 0.4, EmbeddingInit::Random)},
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
