// Per-epoch metrics by name. Values are 0-dim tensors summed on the device, so the training loop never
// waits for the device to report a loss; the host reads the sums only when it shows or records them.
// A new loss is one add() call: nothing else needs to know its name.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qimera::methods {

class MetricSums {
 public:
  /// Adds one observation of `name` (a 0-dim tensor, detached here). Its mean is over its own
  /// observations, so a metric added only on some iterations (Q's loss after warm-up) averages
  /// over those.
  void add(std::string_view name, const at::Tensor& value);
  /// The same for a host value (no device involved).
  void add(std::string_view name, double value);

  /// Whether any tensor sum is NaN or infinite (reads the device once).
  bool any_nonfinite() const;
  /// The names whose sums are NaN or infinite (reads every sum; for the error message).
  std::vector<std::string> nonfinite_names() const;

  /// Means in the order the names first appeared (reads the device).
  std::vector<std::pair<std::string, double>> means() const;
  /// "name value  name value ..." for a progress bar (reads the device).
  std::string summary() const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::string name;
    at::Tensor sum;     // device sum (tensor metrics)
    double host = 0;    // host sum (host metrics)
    int64_t count = 0;
  };
  Entry& entry(std::string_view name);
  std::vector<Entry> entries_;
};

}  // namespace qimera::methods
