#include "qimera/data/dataset.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qimera::data {
namespace {
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

std::shared_ptr<TensorDataset> numbered(int64_t n, int64_t classes = 5) {
  auto images = at::arange(n, at::kLong).to(at::kByte).view({n, 1, 1, 1}).expand({n, 1, 2, 3});
  return std::make_shared<TensorDataset>(images.contiguous(), at::arange(n, at::kLong) % classes,
                                         classes, "numbered");
}

TEST(TensorDataset, GetReturnsImageAndLabel) {
  const auto ds = numbered(7);
  EXPECT_EQ(ds->size(), 7);
  const auto ex = ds->get(6);
  EXPECT_EQ(ex.label, 1);
  EXPECT_EQ(ex.image.sizes(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(ex.image.eq(6).all().item<bool>());
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_THAT([&] { ds->get(7); }, ThrowsMessage<Error>(HasSubstr("index 7 is out of range")));
  EXPECT_THAT([&] { ds->get(-1); }, ThrowsMessage<Error>(HasSubstr("out of range")));
}

TEST(TensorDataset, ValidatesInputs) {
  const auto images = at::zeros({3, 1, 2, 2}, at::kByte);
  const auto labels = at::tensor(std::vector<int64_t>{0, 1, 2});
  EXPECT_NO_THROW(TensorDataset(images, labels, 3, "ok"));
  EXPECT_THAT([&] { TensorDataset(images, labels, 2, "bad-labels"); },
              ThrowsMessage<Error>(HasSubstr("label 2 of example 2 is outside 0..1")));
  EXPECT_THAT([&] { TensorDataset(images, -labels, 3, "negative"); },
              ThrowsMessage<Error>(HasSubstr("label -1 of example 1")));
  EXPECT_THAT([&] { TensorDataset(images.to(at::kFloat), labels, 3, "float"); },
              ThrowsMessage<Error>(HasSubstr("uint8")));
  EXPECT_THAT(
      [&] {
        TensorDataset(images.view({3, 4}), labels, 3, "2d");
      },
      ThrowsMessage<Error>(HasSubstr("[N,C,H,W]")));
  EXPECT_THAT([&] { TensorDataset(images, labels.narrow(0, 0, 2), 3, "short"); },
              ThrowsMessage<Error>(HasSubstr("3 images but 2 labels")));
  EXPECT_THAT([&] { TensorDataset(images, labels.to(at::kInt), 3, "int32"); },
              ThrowsMessage<Error>(HasSubstr("int64")));
  EXPECT_THAT(
      [&] {
        TensorDataset(images, labels, 3, "names", {"a", "b"});
      },
      ThrowsMessage<Error>(HasSubstr("2 class names for 3 classes")));
}

TEST(TensorDataset, GatherMatchesGet) {
  const auto ds = numbered(9);
  const auto batch = ds->gather({4, 0, 8, 4});
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->images.size(0), 4);
  const std::vector<int64_t> expected{4, 0, 8, 4};
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(batch->images[i].equal(ds->get(expected[i]).image));
    EXPECT_EQ(batch->labels[i].item<int64_t>(), ds->get(expected[i]).label);
  }
}

TEST(Subset, MapsIndicesAndValidates) {
  const auto ds = numbered(10);
  const auto sub = subset(ds, {9, 2, 2});
  EXPECT_EQ(sub->size(), 3);
  EXPECT_EQ(sub->num_classes(), 5);
  EXPECT_TRUE(sub->get(0).image.eq(9).all().item<bool>());
  EXPECT_TRUE(sub->get(2).image.eq(2).all().item<bool>());
  const auto gathered = sub->gather({1, 0});
  ASSERT_TRUE(gathered.has_value());
  EXPECT_TRUE(gathered->images[1].eq(9).all().item<bool>());
  EXPECT_THAT([&] { sub->get(3); }, ThrowsMessage<Error>(HasSubstr("out of range")));
  EXPECT_THAT([&] { subset(ds, {10}); }, ThrowsMessage<Error>(HasSubstr("index 10")));
}

}  // namespace
}  // namespace qimera::data
