#include "qimera/quant/observer.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"
#include "qimera/quant/fake_quantize.h"
#include "qimera/quant/tail_quantile.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace qimera::quant {
namespace {

// Percentiles of a huge activation tensor: a strided sample of at most this many values is enough.
constexpr int64_t kPercentileSample = 1 << 20;
// The MSE search evaluates every candidate on every sampled value at once ([candidates, sample]);
// it runs on every forward of the warm-up, so the sample is small. The candidates span the whole
// tensor's [min, max], not the sample's.
constexpr int64_t kMseSample = 1 << 12;
constexpr int64_t kMseCandidates = 100;

bool is_prime(int64_t n) {
  if (n < 2) return false;
  for (int64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

// At most `at_most` values, every stride-th. The stride is prime so that it does not divide a
// plane's size: a stride of 196 on 28 x 28 planes would read the same 4 pixels of every channel.
at::Tensor strided_sample(const at::Tensor& x, int64_t at_most) {
  auto flat = x.reshape({-1});
  if (flat.numel() > at_most) {
    int64_t stride = (flat.numel() + at_most - 1) / at_most;
    while (!is_prime(stride)) ++stride;
    flat = flat.slice(0, 0, flat.numel(), stride);
  }
  return flat.to(at::kFloat);
}

void add_to_running_mean(ObserverState& s, const at::Tensor& lo, const at::Tensor& hi) {
  s.aux.add_(1);
  // m += (v - m) / n.
  s.lo.add_((lo - s.lo) / s.aux);
  s.hi.add_((hi - s.hi) / s.aux);
}

void observe_reference_ema(double beta_value, ObserverState& s, const at::Tensor& x) {
  // Exactly the reference's float32 operations, including dividing the already-corrected value again.
  const auto beta = at::full({1}, beta_value, s.lo.options());
  auto [mn, mx] = at::aminmax(x);
  s.aux.mul_(beta);
  const auto denom = 1 - s.aux;
  s.lo.copy_((s.lo * beta + mn * (1 - beta)) / denom);
  s.hi.copy_((s.hi * beta + mx * (1 - beta)) / denom);
}

void observe_ema(double beta, ObserverState& s, const at::Tensor& x) {
  auto [mn, mx] = at::aminmax(x);
  s.lo.mul_(beta).add_(mn, 1 - beta);
  s.hi.mul_(beta).add_(mx, 1 - beta);
  s.aux.mul_(beta);
}

void observe_min_max(ObserverState& s, const at::Tensor& x) {
  auto [mn, mx] = at::aminmax(x);
  at::minimum_out(s.lo, s.lo, mn.reshape({1}));
  at::maximum_out(s.hi, s.hi, mx.reshape({1}));
  s.aux.add_(1);
}

void observe_percentile(double percentile, ObserverState& s, const at::Tensor& x) {
  const auto flat = strided_sample(x, kPercentileSample);
  add_to_running_mean(s, tail_quantile(flat, (100.0 - percentile) / 100.0),
                      tail_quantile(flat, percentile / 100.0));
}

// OMSE-style clipping search (as TensorRT's and PyTorch's histogram calibrators minimise the same
// L2 error), done with the quantizer Q will use, so that the chosen range is optimal for it.
void observe_mse(int bits, ObserverState& s, const at::Tensor& x) {
  const auto flat = strided_sample(x, kMseSample);
  const auto [mn, mx] = at::aminmax(x.to(at::kFloat));
  const auto factors = at::arange(1, kMseCandidates + 1, flat.options()) / double(kMseCandidates);
  const auto lo = mn * factors, hi = mx * factors;
  const auto params = affine_params(bits, lo, hi);
  // One row per candidate, so that the fused per-channel kernel quantizes all of them in one pass.
  const auto values = flat.unsqueeze(0).expand({kMseCandidates, flat.numel()}).contiguous();
  const auto error = (fake_quantize(values, params, bits, Ste::Unclipped) - values).square().mean(1);
  const auto best = error.argmin().reshape({1});
  add_to_running_mean(s, lo.index_select(0, best), hi.index_select(0, best));
}

}  // namespace

std::string to_string(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::ReferenceEma: return "reference-ema";
    case ObserverKind::Ema: return "ema";
    case ObserverKind::MinMax: return "minmax";
    case ObserverKind::Percentile: return "percentile";
    case ObserverKind::Mse: return "mse";
  }
  return "?";
}

ObserverKind parse_observer(const std::string& name) {
  for (auto kind : {ObserverKind::ReferenceEma, ObserverKind::Ema, ObserverKind::MinMax,
                    ObserverKind::Percentile, ObserverKind::Mse}) {
    if (name == to_string(kind)) return kind;
  }
  fail("unknown observer '{}': expected ema (bias-corrected, default), reference-ema (the reference's, "
       "for exact reproduction), minmax, percentile or mse",
       name);
}

void ObserverOptions::validate() const {
  require(beta > 0 && beta < 1, "observer beta {} must be in (0, 1)", beta);
  require(percentile > 50 && percentile <= 100, "observer percentile {} must be in (50, 100]",
          percentile);
}

nlohmann::json ObserverOptions::to_json() const {
  return {{"kind", to_string(kind)}, {"beta", beta}, {"percentile", percentile}};
}

ObserverOptions ObserverOptions::from_json(const nlohmann::json& j) {
  ObserverOptions o;
  const std::string what = "observer";
  o.kind = parse_observer(json_string(json_field(j, "kind", what), what + " kind"));
  if (j.contains("beta")) o.beta = json_number(j.at("beta"), what + " beta");
  if (j.contains("percentile")) o.percentile = json_number(j.at("percentile"), what + " percentile");
  o.validate();
  return o;
}

ObserverState initial_observer_state(const ObserverOptions& options) {
  const bool ema = options.kind == ObserverKind::ReferenceEma || options.kind == ObserverKind::Ema;
  return {at::zeros({1}, at::kFloat), at::zeros({1}, at::kFloat),
          ema ? at::ones({1}, at::kFloat) : at::zeros({1}, at::kFloat)};
}

void observe(const ObserverOptions& options, ObserverState& state, const at::Tensor& x, int bits) {
  at::NoGradGuard no_grad;
  const auto values = x.detach();
  switch (options.kind) {
    case ObserverKind::ReferenceEma: return observe_reference_ema(options.beta, state, values);
    case ObserverKind::Ema: return observe_ema(options.beta, state, values);
    case ObserverKind::MinMax: return observe_min_max(state, values);
    case ObserverKind::Percentile: return observe_percentile(options.percentile, state, values);
    case ObserverKind::Mse: return observe_mse(bits, state, values);
  }
}

std::pair<at::Tensor, at::Tensor> observed_range(const ObserverOptions& options,
                                                 const ObserverState& state) {
  if (options.kind != ObserverKind::Ema) return {state.lo, state.hi};
  // Before the first update beta^t = 1 and the raw averages are 0: read 0 rather than 0/0.
  const auto correction = at::clamp_min(1 - state.aux, 1e-12);
  return {state.lo / correction, state.hi / correction};
}

}  // namespace qimera::quant
