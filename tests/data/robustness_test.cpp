// Hostile and broken data files: IDX headers whose sizes overflow or describe 0 x 0 images, files
// that are not files, and a Fashion-MNIST record nested deep enough to overflow a recursion.
#include "qimera/core/error.h"
#include "qimera/data/fashion_mnist.h"
#include "qimera/data/idx.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>

namespace qimera::data {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

using qimera::testing::be32;

using qimera::testing::peak_rss_kb;

TEST(IdxRobustness, ZeroSizedImagesAreAnError) {
  TempDir dir;
  write_bytes(dir / "empty", be32(0x803) + be32(5) + be32(0) + be32(0));
  EXPECT_THAT([&] { read_idx_images(dir / "empty"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("empty"), HasSubstr("0x0 pixels"))));
}

TEST(IdxRobustness, HugeClaimsAreComparedWithTheFileBeforeAllocating) {
  TempDir dir;
  const long before = peak_rss_kb();
  // 2^32 - 1 images of 8192 x 8192 in a 16-byte file.
  write_bytes(dir / "claims", be32(0x803) + be32(0xffffffff) + be32(8192) + be32(8192));
  EXPECT_THAT([&] { read_idx_images(dir / "claims"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("claims"), HasSubstr("truncated"),
                                         HasSubstr("the file has 16 bytes"))));
  write_bytes(dir / "wide", be32(0x803) + be32(1) + be32(0xffffffff) + be32(0xffffffff));
  EXPECT_THAT([&] { read_idx_images(dir / "wide"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("wide"), HasSubstr("4294967295x4294967295"),
                                         HasSubstr("more than the"))));
  write_bytes(dir / "labels", be32(0x801) + be32(0xffffffff));
  EXPECT_THAT([&] { read_idx_labels(dir / "labels"); },
              ThrowsMessage<Error>(HasSubstr("truncated")));
  EXPECT_LT(peak_rss_kb() - before, 50 * 1024);
}

TEST(IdxRobustness, FifosAreRefusedInsteadOfBlocking) {
  TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "images").c_str(), 0600), 0);
  EXPECT_THAT([&] { read_idx_images(dir / "images"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("images"), HasSubstr("FIFO"))));
}

TEST(FashionMnistRobustness, ADeeplyNestedRecordIsAnErrorNotACrash) {
  TempDir dir;
  const fs::path clothes = dir / "pkg/src/clothes";
  // The record that crashed `qimera data prepare` (its error message dumped the whole value).
  write_bytes(clothes / "0.json", "{\"data\": [" + std::string(100000, '[') +
                                      std::string(100000, ']') + "]}");
  write_bytes(clothes / "1.json", R"({"data": []})");
  EXPECT_THAT([&] { prepare_fashion_mnist(dir / "pkg", dir / "out"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("0.json"), HasSubstr("nested"))));
}

}  // namespace
}  // namespace qimera::data
