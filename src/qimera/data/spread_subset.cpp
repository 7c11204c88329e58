#include "qimera/data/spread_subset.h"

#include "qimera/core/error.h"

#include <algorithm>
#include <vector>

namespace qimera::data {

std::shared_ptr<const Dataset> spread_subset(std::shared_ptr<const Dataset> parent, int64_t n) {
  require(parent != nullptr, "spread_subset of a null data set");
  require(n >= 0, "cannot take {} examples", n);
  const int64_t size = parent->size();
  const int64_t count = std::min(n, size);
  std::vector<int64_t> indices(static_cast<size_t>(count));
  // i * size fits in int64 for any data set that fits in memory.
  for (int64_t i = 0; i < count; ++i) indices[static_cast<size_t>(i)] = i * size / count;
  return subset(std::move(parent), std::move(indices));
}

}  // namespace qimera::data
