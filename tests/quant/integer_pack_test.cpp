#include "qimera/core/error.h"
#include "qimera/quant/integer_pack.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::quant {
namespace {

TEST(IntegerPack, FourBitsTwoPerByteLowNibbleFirst) {
  const auto packed = pack_integers(at::tensor({-8, 7, 0}), 4);
  ASSERT_EQ(packed.scalar_type(), at::kByte);
  ASSERT_EQ(packed.numel(), 2);
  EXPECT_EQ(packed[0].item<int>(), 0xF0);  // -8 -> 0 (low), 7 -> 15 (high)
  EXPECT_EQ(packed[1].item<int>(), 0x08);  // 0 -> 8, padding 0
}

TEST(IntegerPack, RoundTripsEveryWidth) {
  at::manual_seed(0);
  for (int bits = 2; bits <= 8; ++bits) {
    for (int64_t count : {1, 2, 7, 100}) {
      const auto values =
          at::randint(-(1 << (bits - 1)), 1 << (bits - 1), {count}, at::kLong).to(at::kFloat);
      const auto packed = pack_integers(values, bits);
      EXPECT_EQ(packed.numel(), bits <= 4 ? (count + 1) / 2 : count);
      EXPECT_TRUE(at::equal(unpack_integers(packed, bits, count), values)) << bits << " " << count;
    }
  }
}

TEST(IntegerPack, RejectsOutOfRangeAndWrongSizes) {
  EXPECT_THROW(pack_integers(at::tensor({8}), 4), Error);
  EXPECT_THROW(pack_integers(at::tensor({-9}), 4), Error);
  EXPECT_THROW(unpack_integers(at::zeros({3}, at::kByte), 4, 8), Error);
  EXPECT_THROW(unpack_integers(at::zeros({3}, at::kByte), 8, 3), Error);
}

}  // namespace
}  // namespace qimera::quant
