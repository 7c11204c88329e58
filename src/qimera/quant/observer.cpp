#include "qimera/quant/observer.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"
#include "qimera/quant/tail_quantile.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace qimera::quant {
namespace {

// Percentiles of a huge activation tensor: a strided sample of at most this many values is enough.
constexpr int64_t kPercentileSample = 1 << 20;

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
  auto flat = x.reshape({-1});
  if (flat.numel() > kPercentileSample) {
    flat = flat.slice(0, 0, flat.numel(), flat.numel() / kPercentileSample);
  }
  flat = flat.to(at::kFloat);
  const auto lo = tail_quantile(flat, (100.0 - percentile) / 100.0);
  const auto hi = tail_quantile(flat, percentile / 100.0);
  s.aux.add_(1);
  // Running mean: m += (v - m) / n.
  s.lo.add_((lo - s.lo) / s.aux);
  s.hi.add_((hi - s.hi) / s.aux);
}

}  // namespace

std::string to_string(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::ReferenceEma: return "reference-ema";
    case ObserverKind::Ema: return "ema";
    case ObserverKind::MinMax: return "minmax";
    case ObserverKind::Percentile: return "percentile";
  }
  return "?";
}

ObserverKind parse_observer(const std::string& name) {
  for (auto kind : {ObserverKind::ReferenceEma, ObserverKind::Ema, ObserverKind::MinMax,
                    ObserverKind::Percentile}) {
    if (name == to_string(kind)) return kind;
  }
  fail("unknown observer '{}': expected ema (bias-corrected, default), reference-ema (the reference's, "
       "for exact reproduction), minmax or percentile",
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

void observe(const ObserverOptions& options, ObserverState& state, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  const auto values = x.detach();
  switch (options.kind) {
    case ObserverKind::ReferenceEma: return observe_reference_ema(options.beta, state, values);
    case ObserverKind::Ema: return observe_ema(options.beta, state, values);
    case ObserverKind::MinMax: return observe_min_max(state, values);
    case ObserverKind::Percentile: return observe_percentile(options.percentile, state, values);
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
