#include "qimera/methods/metrics.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace qimera::methods {

MetricSums::Entry& MetricSums::entry(std::string_view name) {
  for (auto& e : entries_) {
    if (e.name == name) return e;
  }
  entries_.push_back({std::string(name), at::Tensor(), 0.0, 0});
  return entries_.back();
}

void MetricSums::add(std::string_view name, const at::Tensor& value) {
  require(value.defined() && value.numel() == 1, "metric '{}' must be a single value", name);
  at::NoGradGuard no_grad;
  auto& e = entry(name);
  const auto v = value.detach().reshape({}).to(at::kDouble);
  e.sum = e.sum.defined() ? e.sum + v : v;
  ++e.count;
}

void MetricSums::add(std::string_view name, double value) {
  auto& e = entry(name);
  e.host += value;
  ++e.count;
}

bool MetricSums::any_nonfinite() const {
  at::Tensor all;
  for (const auto& e : entries_) {
    if (!e.sum.defined()) {
      if (!std::isfinite(e.host)) return true;
      continue;
    }
    all = all.defined() ? all + e.sum : e.sum;  // NaN and infinities survive a sum
  }
  return all.defined() && !at::isfinite(all).item<bool>();
}

std::vector<std::string> MetricSums::nonfinite_names() const {
  std::vector<std::string> names;
  for (const auto& [name, mean] : means()) {
    if (!std::isfinite(mean)) names.push_back(name);
  }
  return names;
}

std::vector<std::pair<std::string, double>> MetricSums::means() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& e : entries_) {
    const double sum = e.sum.defined() ? e.sum.item<double>() : e.host;
    out.emplace_back(e.name, e.count > 0 ? sum / static_cast<double>(e.count) : 0.0);
  }
  return out;
}

std::string MetricSums::summary() const {
  std::string text;
  for (const auto& [name, mean] : means()) {
    if (!text.empty()) text += "  ";
    text += fmt::format("{} {:.4g}", name, mean);
  }
  return text;
}

}  // namespace qimera::methods
