#include "qimera/generator/generator.h"

#include <ATen/ATen.h>
#include <c10/util/StringUtil.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"

namespace qimera::generator {
namespace {

constexpr int64_t kBodyChannels = 128;  // channels of the body's first feature maps
constexpr double kSlope = 0.2;          // LeakyReLU negative slope
constexpr int64_t kMaxGeneratorClasses = 100000;
constexpr int64_t kMaxGeneratorImageSize = 1024;

std::string shape_text(const at::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "none"; }

at::Tensor upsample2(const at::Tensor& x) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .scale_factor(std::vector<double>{2.0, 2.0})
                               .mode(torch::kNearest));
}

}  // namespace

std::string_view to_string(EmbeddingInit init) {
  switch (init) {
    case EmbeddingInit::Random:
      return "random";
    case EmbeddingInit::Extracted:
      return "extracted";
    case EmbeddingInit::ExtractedScaled:
      return "extracted-scaled";
  }
  fail("unknown EmbeddingInit value {}", static_cast<int>(init));
}

std::string_view to_string(LatentInput input) {
  switch (input) {
    case LatentInput::Embedding:
      return "embedding";
    case LatentInput::Product:
      return "product";
    case LatentInput::Noise:
      return "noise";
  }
  fail("unknown LatentInput value {}", static_cast<int>(input));
}

LatentInput parse_latent_input(std::string_view text) {
  for (auto input : {LatentInput::Embedding, LatentInput::Product, LatentInput::Noise}) {
    if (text == to_string(input)) return input;
  }
  fail("unknown generator input '{}': use 'embedding' (Qimera), 'product' (GDFQ) or 'noise' (ZAQ)",
       text);
}

EmbeddingInit parse_embedding_init(std::string_view text) {
  for (auto init :
       {EmbeddingInit::Random, EmbeddingInit::Extracted, EmbeddingInit::ExtractedScaled}) {
    if (text == to_string(init)) return init;
  }
  fail(
      "unknown embedding init '{}': use 'random' (N(0, 1)), 'extracted' (EEI: the teacher's "
      "last FC weight) or 'extracted-scaled' (that weight scaled to a root mean square of 1)",
      text);
}

void GeneratorOptions::validate() const {
  require(num_classes >= 1, "generator: num_classes must be at least 1, got {}", num_classes);
  require(image_size >= 4 && image_size % 4 == 0,
          "generator: image_size {} must be a positive multiple of 4 (the body upsamples S/4 "
          "twice), e.g. 32 for CIFAR, 28 for MNIST, 224 for ImageNet",
          image_size);
  require(channels >= 1, "generator: channels must be at least 1, got {}", channels);
  // The normalizer standardizes each sample over its D entries: one entry has no spread.
  require(latent_dim >= 2,
          "generator: latent_dim must be at least 2, got {} (use the teacher's penultimate "
          "feature width, e.g. 64 for ResNet-20)",
          latent_dim);
  require(
      !disentangle || disentangle_dim >= 1,
      "generator: disentangle_dim must be at least 1 with DM on, got {} (the reference uses 100)",
      disentangle_dim);
  require(body_eps > 0, "generator: body_eps must be positive, got {}", body_eps);
  const bool embedding = input == LatentInput::Embedding;
  require(embedding || (!disentangle && embedding_init == EmbeddingInit::Random),
          "generator: DM and EEI need Qimera's embedding input, not '{}'", to_string(input));
  require(input != LatentInput::Noise || !freeze_embeddings,
          "generator: a noise input has no embeddings to freeze");
  // Upper bounds, so that a mistyped size is an error rather than a request for terabytes.
  require(num_classes <= kMaxGeneratorClasses, "generator: {} classes, more than the {} supported",
          num_classes, kMaxGeneratorClasses);
  require(image_size <= kMaxGeneratorImageSize,
          "generator: image_size {} is larger than the {} supported", image_size,
          kMaxGeneratorImageSize);
  require(channels <= 64 && latent_dim <= 65536 && disentangle_dim <= 65536,
          "generator: channels {}, latent_dim {} or disentangle_dim {} is implausibly large "
          "(at most 64, 65536, 65536)",
          channels, latent_dim, disentangle_dim);
  const double first_layer = static_cast<double>(input_width()) * kBodyChannels *
                             static_cast<double>(init_size() * init_size());
  require(first_layer <= 2e9,
          "generator: its first layer would hold {:.3g} weights ({:.1f} GB) for {}x{} images from "
          "{}-wide inputs; use a smaller latent_dim or disentangle_dim",
          first_layer, first_layer * 4 / 1e9, image_size, image_size, input_width());
}

nlohmann::json GeneratorOptions::to_json() const {
  return {{"num_classes", num_classes},
          {"image_size", image_size},
          {"channels", channels},
          {"latent_dim", latent_dim},
          {"input", std::string(to_string(input))},
          {"body_eps", body_eps},
          {"disentangle", disentangle},
          {"disentangle_dim", disentangle_dim},
          {"conditional_bn", conditional_bn},
          {"embedding_init", std::string(to_string(embedding_init))},
          {"freeze_embeddings", freeze_embeddings}};
}

GeneratorOptions GeneratorOptions::from_json(const nlohmann::json& json) {
  require(json.is_object(), "generator options must be a JSON object, got {}", json_excerpt(json));
  auto integer = [&](const char* key) {
    require(json.contains(key), "generator options need an integer '{}', got nothing", key);
    return json_integer(json.at(key), fmt::format("generator option '{}'", key), INT64_MIN,
                        INT64_MAX);
  };
  auto boolean = [&](const char* key) {
    require(json.at(key).is_boolean(), "generator option '{}' must be true or false, got {}", key,
            json_excerpt(json.at(key)));
    return json.at(key).get<bool>();
  };
  GeneratorOptions options(integer("num_classes"), integer("image_size"), integer("channels"),
                           integer("latent_dim"));
  for (const auto& [key, value] : json.items()) {
    if (key == "num_classes" || key == "image_size" || key == "channels" ||
        key == "latent_dim") {
      continue;
    } else if (key == "input") {
      require(value.is_string(), "generator option 'input' must be a string");
      options.input = parse_latent_input(value.get<std::string>());
    } else if (key == "body_eps") {
      require(value.is_number(), "generator option 'body_eps' must be a number");
      options.body_eps = value.get<double>();
    } else if (key == "disentangle") {
      options.disentangle = boolean("disentangle");
    } else if (key == "disentangle_dim") {
      options.disentangle_dim = integer("disentangle_dim");
    } else if (key == "conditional_bn") {
      options.conditional_bn = boolean("conditional_bn");
    } else if (key == "embedding_init") {
      require(value.is_string(), "generator option 'embedding_init' must be a string, got {}",
              json_excerpt(value));
      options.embedding_init = parse_embedding_init(value.get<std::string>());
    } else if (key == "freeze_embeddings") {
      options.freeze_embeddings = boolean("freeze_embeddings");
    } else {
      fail(
          "unknown generator option '{}' (known: num_classes, image_size, channels, "
          "latent_dim, input, body_eps, disentangle, disentangle_dim, conditional_bn, "
          "embedding_init, freeze_embeddings)",
          key);
    }
  }
  options.validate();
  return options;
}

at::Tensor normalize_embeddings(const at::Tensor& x, double eps) {
  require(x.dim() == 2 || x.dim() == 3, "normalize_embeddings expects [B, D] or [B, K, D], got {}",
          shape_text(x));
  // [B, D]: statistics per sample over D. [B, K, D]: per k over B x D. (The reference transposes
  // the input of a BatchNorm1d so that these become its channels.)
  const std::vector<int64_t> dims =
      x.dim() == 2 ? std::vector<int64_t>{1} : std::vector<int64_t>{0, 2};
  const auto mean = x.mean(dims, /*keepdim=*/true);
  const auto centered = x - mean;
  const auto var = centered.square().mean(dims, /*keepdim=*/true);  // biased
  return centered * (var + eps).rsqrt();
}

GeneratorImpl::GeneratorImpl(GeneratorOptions options) : options_(std::move(options)) {
  options_.validate();
  const auto& o = options_;
  namespace nn = torch::nn;

  // Registration order and names follow the reference, so state dicts line up key for key.
  if (o.input != LatentInput::Noise) {
    label_emb_ = register_module("label_emb", nn::Embedding(o.num_classes, o.latent_dim));
    if (o.freeze_embeddings) label_emb_->weight.set_requires_grad(false);
  }
  if (o.disentangle) {
    fc_reducer_ = register_module("fc_reducer", nn::Linear(o.latent_dim, o.disentangle_dim));
  }
  l1_ = nn::Linear(o.input_width(), kBodyChannels * o.init_size() * o.init_size());
  register_module("l1", nn::Sequential(l1_));

  auto conv3x3 = [](int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(1).padding(1).bias(true));
  };
  conv1_ = conv3x3(kBodyChannels, kBodyChannels);
  conv2_ = conv3x3(kBodyChannels, 64);
  conv3_ = conv3x3(64, o.channels);
  bn_out_ = nn::BatchNorm2d(nn::BatchNorm2dOptions(o.channels).affine(false));

  if (!o.conditional_bn) {
    bn_[0] = nn::BatchNorm2d(nn::BatchNorm2dOptions(kBodyChannels));
    bn_[1] = nn::BatchNorm2d(nn::BatchNorm2dOptions(kBodyChannels).eps(o.body_eps));
    bn_[2] = nn::BatchNorm2d(nn::BatchNorm2dOptions(64).eps(o.body_eps));
    // The Sequentials only give the reference's names (conv_blocks1.0.weight ...); forward calls
    // the layers directly, sharing one body with the conditional variant.
    auto leaky = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kSlope)); };
    register_module("conv_blocks0", nn::Sequential(bn_[0]));
    register_module("conv_blocks1", nn::Sequential(conv1_, bn_[1], leaky()));
    register_module("conv_blocks2",
                    nn::Sequential(conv2_, bn_[2], leaky(), conv3_, nn::Tanh(), bn_out_));
  } else {
    auto cbn = [&](int64_t features, double eps) {
      CategoricalConditionalBatchNorm2dOptions cbn_options(o.num_classes, features);
      cbn_options.eps = eps;
      return CategoricalConditionalBatchNorm2d(cbn_options);
    };
    cbn_[0] = register_module("conv_blocks0_0", cbn(kBodyChannels, 1e-5));
    register_module("conv_blocks1_0", conv1_);
    cbn_[1] = register_module("conv_blocks1_1", cbn(kBodyChannels, o.body_eps));
    register_module("conv_blocks2_0", conv2_);
    cbn_[2] = register_module("conv_blocks2_1", cbn(64, o.body_eps));
    register_module("conv_blocks2_3", conv3_);
    register_module("conv_blocks2_5", bn_out_);
  }
}

void GeneratorImpl::check_batch(const LatentBatch& batch) const {
  const auto& o = options_;
  require(batch.noise.defined() && batch.noise.is_floating_point() && batch.noise.dim() >= 2,
          "generator: noise must be a floating-point tensor [B, D] or [B, K, D], got {}",
          shape_text(batch.noise));
  if (!o.uses_labels()) {
    require(!batch.labels.defined() && batch.noise.sizes() == at::IntArrayRef{batch.noise.size(0), o.latent_dim},
            "generator: this generator takes no labels, only noise [B, {}]; got labels {} and noise {}",
            o.latent_dim, shape_text(batch.labels), shape_text(batch.noise));
    return;
  }
  require(batch.labels.defined() && batch.labels.scalar_type() == at::kLong,
          "generator: labels must be an int64 tensor");
  const int64_t b = batch.labels.dim() >= 1 ? batch.labels.size(0) : 0;
  require(b >= 1, "generator: labels must be [B] or [B, K] with B >= 1, got {}",
          shape_text(batch.labels));
  if (!batch.superposed()) {
    require(batch.labels.dim() == 1 && batch.noise.sizes() == at::IntArrayRef{b, o.latent_dim},
            "generator: an ordinary batch needs labels [B] and noise [B, {}], got labels {} and "
            "noise {}",
            o.latent_dim, shape_text(batch.labels), shape_text(batch.noise));
    require(!batch.mix.defined(),
            "generator: an ordinary batch (labels [B]) takes no mix weights; use labels [B, K] "
            "for superposed samples");
    return;
  }
  require(o.input == LatentInput::Embedding,
          "generator: superposed batches need Qimera's embedding input, not '{}'", to_string(o.input));
  const int64_t k = batch.labels.size(1);
  require(batch.noise.sizes() == at::IntArrayRef{b, k, o.latent_dim},
          "generator: a superposed batch with labels [B, K] = {} needs noise [B, K, {}], got {}",
          shape_text(batch.labels), o.latent_dim, shape_text(batch.noise));
  require(batch.mix.defined() && batch.mix.is_floating_point() &&
              batch.mix.sizes() == batch.labels.sizes(),
          "generator: a superposed batch needs floating-point mix weights [B, K] = {}, got {}",
          shape_text(batch.labels), shape_text(batch.mix));
}

LatentBatch GeneratorImpl::sample(int64_t n, const SuperpositionOptions& se, c10::Device device) const {
  require(se.p == 0 || options_.input == LatentInput::Embedding,
          "generator: superposition (p = {}) needs Qimera's embedding input, not '{}'", se.p,
          to_string(options_.input));
  if (options_.uses_labels()) {
    return sample_latents(n, options_.num_classes, options_.latent_dim, se, device);
  }
  require(n >= 1, "batch size must be at least 1, got {}", n);
  LatentBatch out;
  out.noise = at::randn({n, options_.latent_dim}, at::TensorOptions().dtype(at::kFloat).device(device));
  return out;
}

at::Tensor GeneratorImpl::embed(const LatentBatch& batch) {
  check_batch(batch);
  if (options_.input == LatentInput::Noise) return batch.noise;
  if (options_.input == LatentInput::Product) return label_emb_->forward(batch.labels) * batch.noise;
  // E[y] + z (noise scale 1), normalized per sample (or per k over the batch), then DM.
  auto g = normalize_embeddings(label_emb_->forward(batch.labels) + batch.noise);
  if (fc_reducer_) g = fc_reducer_->forward(g);
  // SE: mixed after the normalizer and after DM.
  if (batch.superposed()) g = (g * batch.mix.unsqueeze(2)).sum(1);
  return g;
}

at::Tensor GeneratorImpl::body_norm(int index, const at::Tensor& x, const LatentBatch& batch) {
  return options_.conditional_bn ? cbn_[index]->forward(x, batch.labels, batch.mix)
                                 : bn_[index]->forward(x);
}

at::Tensor GeneratorImpl::forward(const LatentBatch& batch) {
  const int64_t s = options_.init_size();
  auto h = l1_->forward(embed(batch)).view({-1, kBodyChannels, s, s});
  h = body_norm(0, h, batch);
  h = conv1_->forward(upsample2(h));
  h = at::leaky_relu(body_norm(1, h, batch), kSlope);
  h = conv2_->forward(upsample2(h));
  h = at::leaky_relu(body_norm(2, h, batch), kSlope);
  h = at::tanh(conv3_->forward(h));
  return bn_out_->forward(h);
}

void GeneratorImpl::init_embeddings_from(const at::Tensor& fc_weight) {
  const auto& o = options_;
  require(o.embedding_init != EmbeddingInit::Random,
          "init_embeddings_from (EEI) on a generator configured with embedding_init = '{}'; set "
          "embedding_init = extracted (or extracted-scaled) so the recorded configuration says so",
          to_string(o.embedding_init));
  require(fc_weight.defined() && fc_weight.is_floating_point(),
          "EEI needs the teacher's last FC weight as a floating-point tensor");
  require(fc_weight.sizes() == at::IntArrayRef{o.num_classes, o.latent_dim},
          "EEI: the teacher's last FC weight is {}, the generator needs [num_classes, "
          "latent_dim] = [{}, {}] (squeeze a 1x1 convolution classifier's weight first)",
          shape_text(fc_weight), o.num_classes, o.latent_dim);
  at::NoGradGuard no_grad;
  if (o.embedding_init == EmbeddingInit::Extracted) {
    label_emb_->weight.copy_(fc_weight);
    return;
  }
  // G's input is E[y] + z with z ~ N(0, I): a classifier's rows are often far smaller than z
  // (norms 2-3 against 8 for the CIFAR-10 teacher), so the class signal would start drowned.
  // Scaled, the rows keep their directions and ratios and get N(0, 1)'s mean square per entry.
  const auto rms = fc_weight.to(at::kDouble).square().mean().sqrt().item<double>();
  require(std::isfinite(rms) && rms > 0,
          "EEI (extracted-scaled): the teacher's last FC weight has root mean square {}; it "
          "cannot be scaled to 1",
          rms);
  label_emb_->weight.copy_(fc_weight.to(at::kDouble) / rms);
}

}  // namespace qimera::generator
