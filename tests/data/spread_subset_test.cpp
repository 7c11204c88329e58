#include "qimera/data/spread_subset.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

namespace qimera::data {
namespace {

// `per_class` images of each of `classes` classes, ordered by class as an image folder is read;
// image i holds the value i.
std::shared_ptr<TensorDataset> class_ordered(int64_t classes, int64_t per_class) {
  const int64_t n = classes * per_class;
  auto images = at::arange(n, at::kLong).to(at::kByte).view({n, 1, 1, 1});
  return std::make_shared<TensorDataset>(images.contiguous(),
                                         at::arange(n, at::kLong).div(per_class, "floor"), classes,
                                         "class-ordered");
}

std::vector<int64_t> values(const Dataset& d) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < d.size(); ++i) v.push_back(d.get(i).image.item<uint8_t>());
  return v;
}

TEST(SpreadSubset, TakesEveryStretchOfAClassOrderedSet) {
  const auto ds = class_ordered(10, 20);
  const auto sample = spread_subset(ds, 30);
  ASSERT_EQ(sample->size(), 30);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t i = 0; i < sample->size(); ++i) ++per_class[static_cast<size_t>(sample->get(i).label)];
  for (int64_t c = 0; c < 10; ++c) EXPECT_EQ(per_class[static_cast<size_t>(c)], 3) << "class " << c;
}

TEST(SpreadSubset, IndicesAreFloorOfIStepsInOrder) {
  const auto ds = class_ordered(1, 10);
  EXPECT_EQ(values(*spread_subset(ds, 4)), (std::vector<int64_t>{0, 2, 5, 7}));
  EXPECT_EQ(values(*spread_subset(ds, 3)), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(values(*spread_subset(ds, 1)), (std::vector<int64_t>{0}));
}

TEST(SpreadSubset, AllOrNothingAtTheEdges) {
  const auto ds = class_ordered(2, 5);
  EXPECT_EQ(values(*spread_subset(ds, 10)), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(spread_subset(ds, 1000)->size(), 10);
  EXPECT_EQ(spread_subset(ds, 0)->size(), 0);
  EXPECT_THROW(spread_subset(ds, -1), Error);
}

}  // namespace
}  // namespace qimera::data
