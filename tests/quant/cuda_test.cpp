#include "qimera/quant/fake_quantize.h"
#include "support/cuda.h"

#include <ATen/ATen.h>

namespace qimera::quant {
namespace {

TEST(Cuda, FakeQuantizationIsBitIdenticalToTheCpuKernel) {
  QIMERA_REQUIRE_CUDA();
  at::manual_seed(0);
  const auto x = at::randn({64, 16, 8, 8}) * 2;
  const auto w = at::randn({32, 16, 3, 3});
  for (int bits : {2, 4, 5, 8}) {
    const auto p = affine_params(bits, at::full({1}, -1.3f), at::full({1}, 2.1f));
    const auto cuda_params = AffineParams{p.scale.cuda(), p.zero_point.cuda()};
    EXPECT_TRUE(at::equal(fake_quantize(x.cuda(), cuda_params, bits, Ste::Unclipped).cpu(),
                          fake_quantize(x, p, bits, Ste::Unclipped)))
        << bits;
    EXPECT_TRUE(at::equal(fake_quantize_weight(w.cuda(), bits, Ste::Unclipped).cpu(),
                          fake_quantize_weight(w, bits, Ste::Unclipped)))
        << bits;
  }
}

TEST(Cuda, StraightThroughGradients) {
  QIMERA_REQUIRE_CUDA();
  const auto p = affine_params(4, at::zeros({1}).cuda(), at::ones({1}).cuda());
  auto x = at::tensor({-3.0f, 0.5f, 4.0f}).cuda().requires_grad_(true);
  fake_quantize(x, p, 4, Ste::Clipped).sum().backward();
  EXPECT_TRUE(at::equal(x.grad().cpu(), at::tensor({0.0f, 1.0f, 0.0f})));
}

}  // namespace
}  // namespace qimera::quant
