#include "qimera/data/cifar.h"

#include "qimera/core/error.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace qimera::data {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

/// The 3072 image bytes of record `id`: a pattern unique to the record.
std::string image_bytes(int id) {
  std::string bytes(3072, '\0');
  for (int i = 0; i < 3072; ++i) bytes[i] = static_cast<char>((id * 37 + i * 11 + i / 1024) % 256);
  return bytes;
}

std::string cifar10_record(int label, int id) {
  return std::string(1, char(label)) + image_bytes(id);
}

std::string cifar100_record(int coarse, int fine, int id) {
  return std::string{char(coarse), char(fine)} + image_bytes(id);
}

/// Checks the CHW layout: channel c, row y, column x is byte c*1024 + y*32 + x.
void expect_image(const at::Tensor& image, int id) {
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{3, 32, 32}));
  const std::string bytes = image_bytes(id);
  const std::vector<std::array<int, 3>> probes{
      {0, 0, 0}, {0, 0, 31}, {1, 5, 7}, {2, 31, 31}, {2, 17, 3}};
  for (const auto& [c, y, x] : probes) {
    EXPECT_EQ(image[c][y][x].item<int64_t>(), static_cast<uint8_t>(bytes[c * 1024 + y * 32 + x]))
        << "record " << id << " c" << c << " y" << y << " x" << x;
  }
  const auto flat = image.contiguous();
  EXPECT_EQ(std::memcmp(flat.data_ptr<uint8_t>(), bytes.data(), 3072), 0);
}

/// cifar-10-batches-bin with two records per training batch (ids 10*b + r) and three test records.
fs::path make_cifar10(const TempDir& dir) {
  const fs::path folder = dir / "cifar-10-batches-bin";
  for (int b = 1; b <= 5; ++b) {
    write_bytes(folder / ("data_batch_" + std::to_string(b) + ".bin"),
                cifar10_record(b, 10 * b) + cifar10_record(9 - b, 10 * b + 1));
  }
  write_bytes(folder / "test_batch.bin",
              cifar10_record(3, 100) + cifar10_record(0, 101) + cifar10_record(9, 102));
  return folder;
}

TEST(Cifar10, ReadsTrainingBatchesInOrder) {
  TempDir dir;
  make_cifar10(dir);
  const auto ds = open_cifar10(dir.path(), "train");  // the folder holding cifar-10-batches-bin
  ASSERT_EQ(ds->size(), 10);
  EXPECT_EQ(ds->num_classes(), 10);
  for (int b = 1; b <= 5; ++b) {
    EXPECT_EQ(ds->get(2 * (b - 1)).label, b);
    EXPECT_EQ(ds->get(2 * (b - 1) + 1).label, 9 - b);
    expect_image(ds->get(2 * (b - 1)).image, 10 * b);
    expect_image(ds->get(2 * (b - 1) + 1).image, 10 * b + 1);
  }
  EXPECT_EQ(ds->class_names().front(), "airplane");
  EXPECT_EQ(ds->class_names().back(), "truck");
}

TEST(Cifar10, ReadsTestBatchFromFolderOrFile) {
  TempDir dir;
  const auto folder = make_cifar10(dir);
  const auto ds = open_cifar10(folder, "test");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_TRUE(ds->labels().equal(at::tensor(std::vector<int64_t>{3, 0, 9})));
  expect_image(ds->get(2).image, 102);
  const auto single = open_cifar10(folder / "data_batch_2.bin", "ignored");
  ASSERT_EQ(single->size(), 2);
  expect_image(single->get(1).image, 21);
}

TEST(Cifar10, TruncatedFileIsAnError) {
  TempDir dir;
  const auto folder = make_cifar10(dir);
  const std::string bytes = cifar10_record(1, 1) + cifar10_record(2, 2);
  write_bytes(folder / "test_batch.bin", bytes.substr(0, bytes.size() - 5));
  EXPECT_THAT([&] { open_cifar10(folder, "test"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("test_batch.bin"), HasSubstr("truncated"))));
  write_bytes(folder / "test_batch.bin", "");
  EXPECT_THAT([&] { open_cifar10(folder, "test"); },
              ThrowsMessage<Error>(HasSubstr("test_batch.bin")));
}

TEST(Cifar10, LabelOutOfRangeNamesFileAndRecord) {
  TempDir dir;
  const auto folder = make_cifar10(dir);
  write_bytes(folder / "data_batch_4.bin", cifar10_record(1, 1) + cifar10_record(10, 2));
  EXPECT_THAT([&] { open_cifar10(folder, "train"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("data_batch_4.bin"), HasSubstr("record 1"),
                                         HasSubstr("label 10"))));
}

TEST(Cifar10, MissingBatchAndBadSplit) {
  TempDir dir;
  const auto folder = make_cifar10(dir);
  fs::remove(folder / "data_batch_3.bin");
  EXPECT_THAT([&] { open_cifar10(folder, "train"); },
              ThrowsMessage<Error>(HasSubstr("data_batch_3.bin")));
  EXPECT_THAT([&] { open_cifar10(folder, "val"); }, ThrowsMessage<Error>(HasSubstr("'val'")));
  EXPECT_THAT([&] { open_cifar10(dir / "nowhere", "test"); },
              ThrowsMessage<Error>(HasSubstr("nowhere")));
}

TEST(Cifar100, FineLabelsByDefaultCoarseOnRequest) {
  TempDir dir;
  const fs::path folder = dir / "cifar-100-binary";
  write_bytes(folder / "train.bin", cifar100_record(19, 99, 1) + cifar100_record(4, 0, 2));
  write_bytes(folder / "test.bin", cifar100_record(7, 42, 3));
  const auto train = open_cifar100(dir.path(), "train");
  ASSERT_EQ(train->size(), 2);
  EXPECT_EQ(train->num_classes(), 100);
  EXPECT_EQ(train->get(0).label, 99);
  EXPECT_EQ(train->get(1).label, 0);
  expect_image(train->get(0).image, 1);
  expect_image(train->get(1).image, 2);
  EXPECT_EQ(train->class_names()[99], "worm");
  const auto coarse = open_cifar100(folder, "train", Cifar100Labels::coarse);
  EXPECT_EQ(coarse->num_classes(), 20);
  EXPECT_EQ(coarse->get(0).label, 19);
  EXPECT_EQ(coarse->get(1).label, 4);
  EXPECT_EQ(coarse->class_names()[19], "vehicles_2");
  const auto test = open_cifar100(folder, "test");
  ASSERT_EQ(test->size(), 1);
  EXPECT_EQ(test->get(0).label, 42);
  expect_image(test->get(0).image, 3);
}

TEST(Cifar100, ErrorsNameTheFile) {
  TempDir dir;
  write_bytes(dir / "train.bin", cifar100_record(1, 2, 1) + cifar100_record(3, 100, 2));
  EXPECT_THAT([&] { open_cifar100(dir / "train.bin", "train"); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("train.bin"), HasSubstr("record 1"), HasSubstr("label 100"))));
  // A CIFAR-10 file is not a whole number of CIFAR-100 records.
  write_bytes(dir / "c10.bin", cifar10_record(1, 1) + cifar10_record(1, 2));
  EXPECT_THAT([&] { open_cifar100(dir / "c10.bin", "train"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("c10.bin"), HasSubstr("truncated"))));
}

}  // namespace
}  // namespace qimera::data
