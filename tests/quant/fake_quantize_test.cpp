#include "qimera/core/error.h"
#include "qimera/quant/fake_quantize.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qimera::quant {
namespace {

// The fixture prints values rounded to 7 decimals: compare in double at that precision, so that
// the float32 rounding of the printed decimal does not count as a difference.
double printed_precision_error(const at::Tensor& got, const nlohmann::json& want) {
  const auto g = got.reshape({-1}).to(at::kDouble);
  double worst = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    worst = std::max(worst, std::abs(g[i].item<double>() - want.at(i).get<double>()));
  }
  return worst;
}
constexpr double kPrinted = 5e-8 + 1e-12;

// The fixture weight: sin(0.3 + 0.007 j) times a per-channel factor.
at::Tensor fixture_weight() {
  const auto base = testing::sine_tensor({4, 3, 3, 3}, 0.3, 0.007);
  return base * at::tensor({1.0f, 0.5f, 2.0f, 0.01f}).reshape({4, 1, 1, 1});
}

// The ATen composition the reference runs, operation by operation (Python semantics: n / t is
// t.reciprocal() * n).
at::Tensor reference_formula(const at::Tensor& x, const at::Tensor& lo, const at::Tensor& hi,
                             int bits) {
  const double n = static_cast<double>((1 << bits) - 1);
  auto scale = at::clamp_min(hi - lo, 1e-8).reciprocal() * n;
  auto zp = at::round(scale * lo) + static_cast<double>(1 << (bits - 1));
  if (x.dim() == 4 && scale.numel() > 1) {
    scale = scale.view({-1, 1, 1, 1});
    zp = zp.view({-1, 1, 1, 1});
  }
  auto q = at::clamp(at::round(scale * x - zp), -(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  return (q + zp) / scale;
}

class FixtureBits : public ::testing::TestWithParam<int> {};

TEST_P(FixtureBits, PerChannelWeightsMatchPyTorch) {
  const int bits = GetParam();
  const auto& want = testing::parity()["quantizer"][fmt::format("per_channel_{}bit", bits)];
  const auto got = fake_quantize_weight(fixture_weight(), bits, Ste::Unclipped);
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  EXPECT_LE(printed_precision_error(got, want), kPrinted) << bits << " bits";
}

INSTANTIATE_TEST_SUITE_P(Widths, FixtureBits, ::testing::Values(2, 3, 4, 5, 6, 8));

TEST(FakeQuantize, PerTensorActivationsMatchPyTorch) {
  const auto x = testing::sine_tensor({64}, 0.3, 0.007, 3.0);
  const auto lo = at::full({1}, -1.0f);
  const auto hi = at::full({1}, 2.0f);
  for (int bits : {4, 8}) {
    const auto& want = testing::parity()["quantizer"][fmt::format("per_tensor_{}bit_range_-1_2", bits)];
    const auto got = fake_quantize(x, affine_params(bits, lo, hi), bits, Ste::Unclipped);
    EXPECT_LE(printed_precision_error(got, want), kPrinted) << bits << " bits";
  }
}

TEST(FakeQuantize, HandComputedFourBitExample) {
  // Range [-1, 2], 4 bits: scale = 15/3 = 5, zp = round(-5) + 8 = 3, grid step 0.2.
  const auto p = affine_params(4, at::full({}, -1.0f), at::full({}, 2.0f));
  EXPECT_FLOAT_EQ(p.scale.item<float>(), 5.0f);
  EXPECT_FLOAT_EQ(p.zero_point.item<float>(), 3.0f);
  const auto x = at::tensor({-5.0f, -1.0f, 0.0f, 0.29f, 0.31f, 2.0f, 9.0f});
  const auto q = quantize(x, p, 4);
  // round(5x - 3) clamped to [-8, 7].
  EXPECT_TRUE(at::equal(q, at::tensor({-8.0f, -8.0f, -3.0f, -2.0f, -1.0f, 7.0f, 7.0f})));
  const auto y = fake_quantize(x, p, 4, Ste::Unclipped);
  EXPECT_TRUE(at::allclose(y, at::tensor({-1.0f, -1.0f, 0.0f, 0.2f, 0.4f, 2.0f, 2.0f})));
  EXPECT_TRUE(at::equal(y, dequantize(q, p)));
}

TEST(FakeQuantize, KernelIsBitIdenticalToTheAtenComposition) {
  at::manual_seed(3);
  for (int bits = 2; bits <= 8; ++bits) {
    // Per tensor, with values placed exactly on rounding ties as well as random ones.
    const auto lo = at::full({1}, -0.7f);
    const auto hi = at::full({1}, 1.9f);
    const auto p = affine_params(bits, lo, hi);
    auto ties = (at::arange(-40, 40).to(at::kFloat) + 0.5f + p.zero_point) / p.scale;
    const auto x = at::cat({at::randn({10007}) * 1.5, ties});
    EXPECT_TRUE(at::equal(fake_quantize(x, p, bits, Ste::Unclipped), reference_formula(x, lo, hi, bits)))
        << bits << " bits, per tensor";
    // Per channel, random weights.
    const auto w = at::randn({16, 8, 3, 3}) * at::rand({16, 1, 1, 1});
    const auto flat = w.reshape({16, -1});
    EXPECT_TRUE(at::equal(fake_quantize_weight(w, bits, Ste::Unclipped),
                          reference_formula(w, std::get<0>(flat.min(1)), std::get<0>(flat.max(1)), bits)))
        << bits << " bits, per channel";
  }
}

TEST(FakeQuantize, NonContiguousInputTakesTheGeneralPathWithTheSameResult) {
  at::manual_seed(4);
  const auto x = at::randn({32, 48});
  const auto p = affine_params(5, at::full({1}, -2.0f), at::full({1}, 2.0f));
  EXPECT_TRUE(at::equal(fake_quantize(x.t(), p, 5, Ste::Unclipped),
                        fake_quantize(x.t().contiguous(), p, 5, Ste::Unclipped)));
}

TEST(FakeQuantize, ChannelsLastTensorsGiveTheSameValuesGradientsAndKeepTheirLayout) {
  at::manual_seed(6);
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto x = at::randn({2, 5, 4, 3});
  const auto lo = at::full({1}, -1.0f);
  const auto hi = at::full({1}, 1.5f);
  const auto p = affine_params(4, lo, hi);
  const auto x_cl = x.contiguous(cl).requires_grad_(true);
  const auto y_cl = fake_quantize(x_cl, p, 4, Ste::Clipped);
  EXPECT_TRUE(y_cl.is_contiguous(cl));
  EXPECT_TRUE(at::equal(y_cl, reference_formula(x, lo, hi, 4)));
  const auto upstream = at::randn({2, 5, 4, 3});
  (y_cl * upstream).sum().backward();
  const auto x_rm = x.clone().requires_grad_(true);
  (fake_quantize(x_rm, p, 4, Ste::Clipped) * upstream).sum().backward();
  EXPECT_TRUE(at::equal(x_cl.grad(), x_rm.grad()));
  EXPECT_GT((x_rm.grad() == 0).sum().item<int64_t>(), 0);  // some values were clamped
  // Per output channel: each channel is one block in both layouts.
  const auto w = at::randn({6, 4, 3, 3}) * at::rand({6, 1, 1, 1});
  const auto q_cl = fake_quantize_weight(w.contiguous(cl), 4, Ste::Unclipped);
  EXPECT_TRUE(q_cl.is_contiguous(cl));
  EXPECT_TRUE(at::equal(q_cl, fake_quantize_weight(w, 4, Ste::Unclipped)));
}

TEST(FakeQuantize, WeightsHaveAtMostTwoToTheNLevelsPerChannel) {
  at::manual_seed(5);
  const auto w = at::randn({6, 4, 3, 3});
  for (int bits : {2, 4}) {
    const auto q = fake_quantize_weight(w, bits, Ste::Unclipped).reshape({6, -1});
    for (int64_t c = 0; c < 6; ++c) {
      EXPECT_LE(std::get<0>(at::_unique(q[c])).numel(), 1 << bits);
      // The integer zero point shifts the grid by up to half a step: the extremes are represented
      // to within half a step.
      const auto row = w.reshape({6, -1})[c];
      const double step = (row.max() - row.min()).item<double>() / ((1 << bits) - 1);
      EXPECT_LE(std::abs(q[c].max().item<double>() - row.max().item<double>()), 0.5 * step + 1e-6);
      EXPECT_LE(std::abs(q[c].min().item<double>() - row.min().item<double>()), 0.5 * step + 1e-6);
    }
  }
}

TEST(FakeQuantize, UnclippedStraightThroughPassesTheGradientEverywhere) {
  const auto p = affine_params(4, at::full({1}, 0.0f), at::full({1}, 1.0f));
  auto x = at::tensor({-3.0f, 0.1f, 0.5f, 0.9f, 4.0f}).requires_grad_(true);
  const auto upstream = at::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f});
  (fake_quantize(x, p, 4, Ste::Unclipped) * upstream).sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), upstream));  // no masking outside [0, 1]
}

TEST(FakeQuantize, ClippedStraightThroughMasksClampedValues) {
  const auto p = affine_params(4, at::full({1}, 0.0f), at::full({1}, 1.0f));
  auto x = at::tensor({-3.0f, 0.1f, 0.5f, 0.9f, 4.0f}).requires_grad_(true);
  fake_quantize(x, p, 4, Ste::Clipped).sum().backward();
  EXPECT_TRUE(at::equal(x.grad(), at::tensor({0.0f, 1.0f, 1.0f, 1.0f, 0.0f})));
}

TEST(FakeQuantize, NoGradientFlowsToTheRange) {
  auto lo = at::full({1}, -1.0f).requires_grad_(true);
  auto hi = at::full({1}, 1.0f).requires_grad_(true);
  auto x = at::randn({10}).requires_grad_(true);
  auto y = fake_quantize(x, affine_params(4, lo, hi), 4, Ste::Unclipped);
  y.sum().backward();
  EXPECT_FALSE(lo.grad().defined());
  EXPECT_FALSE(hi.grad().defined());
  EXPECT_TRUE(x.grad().defined());
}

TEST(FakeQuantize, WeightGradientIsStraightThrough) {
  auto w = at::randn({3, 2, 3, 3}).requires_grad_(true);
  fake_quantize_weight(w, 3, Ste::Unclipped).mul(2.0).sum().backward();
  EXPECT_TRUE(at::equal(w.grad(), at::full_like(w, 2.0)));
}

TEST(FakeQuantize, RejectsUnsupportedWidths) {
  EXPECT_THROW(check_bits(1), Error);
  EXPECT_THROW(check_bits(9), Error);
  EXPECT_THROW(fake_quantize_weight(at::randn({2, 2}), 16, Ste::Unclipped), Error);
  EXPECT_EQ(qmin(4), -8);
  EXPECT_EQ(qmax(4), 7);
  EXPECT_THROW(parse_ste("sometimes"), Error);
}

}  // namespace
}  // namespace qimera::quant
