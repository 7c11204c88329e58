#include "qimera/data/idx.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qimera::data {
namespace {
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

using qimera::testing::be32;

std::string pattern(size_t n) {
  std::string bytes(n, '\0');
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>((i * 7 + 3) % 256);
  return bytes;
}

std::string images_file(uint32_t n, uint32_t h, uint32_t w) {
  return be32(0x803) + be32(n) + be32(h) + be32(w) + pattern(size_t{n} * h * w);
}

std::string labels_file(const std::string& labels) {
  return be32(0x801) + be32(static_cast<uint32_t>(labels.size())) + labels;
}

TEST(Idx, ReadsImagesWithBigEndianDimensions) {
  TempDir dir;
  // W = 260 needs two bytes: a little-endian or swapped reading would get the shape wrong.
  write_bytes(dir / "img", images_file(2, 3, 260));
  const auto images = read_idx_images(dir / "img");
  ASSERT_EQ(images.sizes(), (std::vector<int64_t>{2, 1, 3, 260}));
  EXPECT_EQ(images.scalar_type(), at::kByte);
  const std::string bytes = pattern(2 * 3 * 260);
  EXPECT_EQ(images[0][0][0][1].item<int64_t>(), static_cast<uint8_t>(bytes[1]));
  EXPECT_EQ(images[1][0][2][259].item<int64_t>(), static_cast<uint8_t>(bytes[2 * 3 * 260 - 1]));
  EXPECT_EQ(images[1][0][1][7].item<int64_t>(), static_cast<uint8_t>(bytes[3 * 260 + 1 * 260 + 7]));
}

TEST(Idx, ReadsLabels) {
  TempDir dir;
  write_bytes(dir / "lab", labels_file(std::string("\x03\x00\x09", 3)));
  const auto labels = read_idx_labels(dir / "lab");
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  EXPECT_TRUE(labels.equal(at::tensor(std::vector<int64_t>{3, 0, 9})));
}

TEST(Idx, WritersProduceTheFormat) {
  TempDir dir;
  const auto images = at::arange(2 * 2 * 3, at::kLong).to(at::kByte).view({2, 1, 2, 3});
  write_idx_images(dir / "img", images);
  EXPECT_EQ(read_file(dir / "img"),
            be32(0x803) + be32(2) + be32(2) + be32(3) +
                std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 12));
  write_idx_images(dir / "img3", images.view({2, 2, 3}));
  EXPECT_EQ(read_file(dir / "img3"), read_file(dir / "img"));
  write_idx_labels(dir / "lab", at::tensor(std::vector<int64_t>{7, 255}));
  EXPECT_EQ(read_file(dir / "lab"), be32(0x801) + be32(2) + "\x07\xff");
  EXPECT_THROW(write_idx_labels(dir / "bad", at::tensor(std::vector<int64_t>{256})), Error);
  EXPECT_THROW(write_idx_images(dir / "bad", at::zeros({1, 3, 2, 2}, at::kByte)), Error);
}

TEST(Idx, WrongMagicNamesTheFile) {
  TempDir dir;
  write_bytes(dir / "labels-as-images", labels_file("\x01\x02"));
  EXPECT_THAT([&] { read_idx_images(dir / "labels-as-images"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("labels-as-images"), HasSubstr("magic"),
                                         HasSubstr("0x00000801"))));
  write_bytes(dir / "images.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  EXPECT_THAT([&] { read_idx_images(dir / "images.gz"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("images.gz"), HasSubstr("gzip"))));
}

TEST(Idx, TruncatedAndOversizedFilesAreErrors) {
  TempDir dir;
  std::string bytes = images_file(3, 4, 4);
  write_bytes(dir / "short-images", bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT([&] { read_idx_images(dir / "short-images"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("short-images"), HasSubstr("truncated"))));
  write_bytes(dir / "header-only", bytes.substr(0, 10));
  EXPECT_THAT([&] { read_idx_images(dir / "header-only"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("header-only"), HasSubstr("truncated"))));
  write_bytes(dir / "long-labels", labels_file("\x01\x02") + "x");
  EXPECT_THAT([&] { read_idx_labels(dir / "long-labels"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("long-labels"), HasSubstr("trailing"))));
  EXPECT_THAT([&] { read_idx_labels(dir / "missing"); },
              ThrowsMessage<Error>(HasSubstr("missing")));
}

TEST(Idx, OpenPairsImagesAndLabels) {
  TempDir dir;
  write_bytes(dir / "img", images_file(3, 2, 2));
  write_bytes(dir / "lab", labels_file(std::string("\x02\x00\x04", 3)));
  const auto ds = open_idx(dir / "img", dir / "lab");
  EXPECT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->num_classes(), 5);  // max label + 1
  EXPECT_EQ(ds->get(2).label, 4);
  EXPECT_TRUE(ds->get(1).image.equal(read_idx_images(dir / "img")[1]));
  EXPECT_EQ(open_idx(dir / "img", dir / "lab", 10)->num_classes(), 10);
}

TEST(Idx, CountMismatchNamesBothFiles) {
  TempDir dir;
  write_bytes(dir / "three-images", images_file(3, 2, 2));
  write_bytes(dir / "two-labels", labels_file("\x01\x02"));
  EXPECT_THAT([&] { open_idx(dir / "three-images", dir / "two-labels"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("three-images"), HasSubstr("two-labels"),
                                         HasSubstr("3 images"), HasSubstr("2 labels"))));
}

TEST(Idx, LabelOutOfRangeNamesFileAndRecord) {
  TempDir dir;
  write_bytes(dir / "img", images_file(3, 2, 2));
  write_bytes(dir / "bad-labels", labels_file(std::string("\x01\x0c\x02", 3)));
  EXPECT_THAT([&] { open_idx(dir / "img", dir / "bad-labels", 10); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("bad-labels"), HasSubstr("label 12"), HasSubstr("record 1"))));
}

}  // namespace
}  // namespace qimera::data
