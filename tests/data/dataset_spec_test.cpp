#include "qimera/data/dataset_spec.h"

#include "qimera/core/error.h"
#include "qimera/data/idx.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

namespace qimera::data {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

void expect_spec(const std::string& text, const std::string& kind, const std::string& path,
                 const std::string& split) {
  const auto spec = parse_dataset_spec(text);
  EXPECT_EQ(spec.kind, kind) << text;
  EXPECT_EQ(spec.path, path) << text;
  EXPECT_EQ(spec.split, split) << text;
  const auto again = parse_dataset_spec(to_string(spec));
  EXPECT_EQ(again.kind, kind);
  EXPECT_EQ(again.path, path);
  EXPECT_EQ(again.split, split);
}

TEST(DatasetSpec, AcceptedForms) {
  expect_spec("fashion-mnist:test", "fashion-mnist", "", "test");
  expect_spec("mnist:train", "mnist", "", "train");
  expect_spec("mnist", "mnist", "", "test");
  expect_spec("cifar10:/data/cifar-10-batches-bin:test", "cifar10", "/data/cifar-10-batches-bin",
              "test");
  expect_spec("cifar10:/data/cifar-10-batches-bin", "cifar10", "/data/cifar-10-batches-bin",
              "test");
  expect_spec("cifar100:/data/cifar-100-binary:train", "cifar100", "/data/cifar-100-binary",
              "train");
  expect_spec("folder:/data/imagenet/val", "folder", "/data/imagenet/val", "");
  expect_spec("idx:/p/images-idx3-ubyte,/p/labels-idx1-ubyte", "idx",
              "/p/images-idx3-ubyte,/p/labels-idx1-ubyte", "");
}

TEST(DatasetSpec, ErrorsExplainTheForms) {
  for (const char* bad : {"svhn:/x", "cifar10", "cifar10:", "mnist:val", "idx:/only-images",
                          "folder:", "idx:,labels", ""}) {
    EXPECT_THAT([&] { parse_dataset_spec(bad); },
                ThrowsMessage<Error>(AllOf(HasSubstr("accepted forms"), HasSubstr("cifar10:PATH"))))
        << bad;
  }
}

using qimera::testing::be32;

TEST(DatasetSpec, OpensEachKind) {
  TempDir dir;
  write_bytes(dir / "img", be32(0x803) + be32(2) + be32(1) + be32(1) + "\x05\x06");
  write_bytes(dir / "lab", be32(0x801) + be32(2) + std::string("\x00\x01", 2));
  const auto idx = open_dataset(
      parse_dataset_spec("idx:" + (dir / "img").string() + "," + (dir / "lab").string()), "");
  EXPECT_EQ(idx->size(), 2);
  EXPECT_EQ(idx->get(1).image.item<int64_t>(), 6);

  write_idx_images(dir / "root/mnist/test-images-idx3-ubyte", at::zeros({4, 28, 28}, at::kByte));
  write_idx_labels(dir / "root/mnist/test-labels-idx1-ubyte", at::arange(4, at::kLong));
  EXPECT_EQ(open_dataset(parse_dataset_spec("mnist:test"), dir / "root")->size(), 4);
  EXPECT_THAT([&] { open_dataset(parse_dataset_spec("mnist:train"), dir / "root"); },
              ThrowsMessage<Error>(HasSubstr("set-up step")));

  std::string record(1 + 3072, '\x07');
  record[0] = 4;
  write_bytes(dir / "c10/test_batch.bin", record);
  const auto cifar = open_dataset(parse_dataset_spec("cifar10:" + (dir / "c10").string()), "");
  EXPECT_EQ(cifar->get(0).label, 4);

  write_bytes(dir / "c100/test.bin", std::string(2 + 3072, '\x03'));
  EXPECT_EQ(open_dataset(parse_dataset_spec("cifar100:" + (dir / "c100").string() + ":test"), "")
                ->num_classes(),
            100);
  EXPECT_THAT([&] { open_dataset(parse_dataset_spec("folder:" + (dir / "none").string()), ""); },
              ThrowsMessage<Error>(HasSubstr("none")));
}

/// Sets an environment variable for the scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DatasetSpec, DefaultDataRoot) {
  ScopedEnv home("HOME", "/home/someone");
  {
    ScopedEnv data("QIMERA_DATA_DIR", "/data/q");
    ScopedEnv cache("XDG_CACHE_HOME", "/cache");
    EXPECT_EQ(default_data_root(), fs::path("/data/q"));
  }
  {
    ScopedEnv data("QIMERA_DATA_DIR", "");
    ScopedEnv cache("XDG_CACHE_HOME", "/cache");
    EXPECT_EQ(default_data_root(), fs::path("/cache/qimera"));
  }
  ScopedEnv data("QIMERA_DATA_DIR", nullptr);
  ScopedEnv cache("XDG_CACHE_HOME", nullptr);
  EXPECT_EQ(default_data_root(), fs::path("/home/someone/.cache/qimera"));
}

}  // namespace
}  // namespace qimera::data
