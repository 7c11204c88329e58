#include "qimera/generator/latents.h"

#include <ATen/ATen.h>
#include <c10/util/StringUtil.h>

#include <nlohmann/json.hpp>

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"

namespace qimera::generator {

void SuperpositionOptions::validate() const {
  require(p >= 0.0 && p <= 1.0,
          "superposition probability p = {} is outside [0, 1]; use 0 for ordinary (GDFQ) batches "
          "only, e.g. 0.4 as in the reference run scripts",
          p);
  require(p == 0.0 || k >= 1,
          "superposition with p = {} needs k >= 1 classes per sample, got k = {} (the reference "
          "uses 2 to 1000)",
          p, k);
}

nlohmann::json SuperpositionOptions::to_json() const { return {{"k", k}, {"p", p}}; }

SuperpositionOptions SuperpositionOptions::from_json(const nlohmann::json& json) {
  require(json.is_object(), "superposition options must be a JSON object, got {}", json_excerpt(json));
  SuperpositionOptions options;
  for (const auto& [key, value] : json.items()) {
    if (key == "k") {
      options.k = json_integer(value, "superposition option k", INT64_MIN, INT64_MAX);
    } else if (key == "p") {
      options.p = json_number(value, "superposition option p");
    } else {
      fail("unknown superposition option '{}' (known: k, p)", key);
    }
  }
  options.validate();
  return options;
}

LatentBatch LatentBatch::to(c10::Device device) const {
  auto move = [&](const at::Tensor& t) { return t.defined() ? t.to(device) : t; };
  return {move(labels), move(noise), move(mix), move(targets)};
}

at::Tensor soft_targets(const at::Tensor& labels, const at::Tensor& mix, int64_t num_classes) {
  require(labels.defined() && labels.scalar_type() == at::kLong,
          "labels must be an int64 tensor, got {}",
          labels.defined() ? std::string(c10::toString(labels.scalar_type())) : "none");
  require(num_classes >= 1, "num_classes must be at least 1, got {}", num_classes);
  require(labels.dim() == 1 || labels.dim() == 2, "labels must be [B] or [B, K], got {}",
          c10::str(labels.sizes()));
  const int64_t batch = labels.size(0);
  if (labels.dim() == 1) {
    require(!mix.defined(), "an ordinary batch (labels [B]) takes no mix weights");
    return at::zeros({batch, num_classes}, labels.options().dtype(at::kFloat))
        .scatter_(1, labels.unsqueeze(1), 1.0);
  }
  require(mix.defined() && mix.sizes() == labels.sizes() && mix.is_floating_point(),
          "a superposed batch needs floating-point mix weights of the labels' shape {}, got {}",
          c10::str(labels.sizes()), mix.defined() ? c10::str(mix.sizes()) : "none");
  // scatter_add_ so that a class drawn twice for one sample receives both weights.
  return at::zeros({batch, num_classes}, mix.options()).scatter_add_(1, labels, mix);
}

LatentBatch sample_latents(int64_t batch, int64_t num_classes, int64_t latent_dim,
                           const SuperpositionOptions& superposition, c10::Device device) {
  superposition.validate();
  require(batch >= 1, "batch size must be at least 1, got {}", batch);
  require(num_classes >= 1, "num_classes must be at least 1, got {}", num_classes);
  require(latent_dim >= 1, "latent_dim must be at least 1, got {}", latent_dim);

  // As the reference: one float32 draw from the CPU generator per batch, compared with p. The draw
  // lies in [0, 1), so p = 0 never and p = 1 always superposes. A CPU tensor: item() needs no sync.
  const double u = at::rand({1}, at::TensorOptions().dtype(at::kFloat)).item<double>();
  const bool superposed = u < superposition.p;

  const auto real = at::TensorOptions().dtype(at::kFloat).device(device);
  const auto index = at::TensorOptions().dtype(at::kLong).device(device);
  LatentBatch out;
  if (superposed) {
    const int64_t k = superposition.k;
    out.noise = at::randn({batch, k, latent_dim}, real);
    out.labels = at::randint(0, num_classes, {batch, k}, index);
    out.mix = at::softmax(at::randn({batch, k}, real), 1);
  } else {
    out.noise = at::randn({batch, latent_dim}, real);
    out.labels = at::randint(0, num_classes, {batch}, index);
  }
  out.targets = soft_targets(out.labels, out.mix, num_classes);
  return out;
}

}  // namespace qimera::generator
