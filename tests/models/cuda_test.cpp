#include "qimera/models/zoo.h"
#include "qimera/quant/convert.h"
#include "support/cuda.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <nlohmann/json.hpp>

namespace qimera::models {
namespace {

TEST(Cuda, ParityLogitsOnTheGpu) {
  QIMERA_REQUIRE_CUDA();
  for_each_preset([](const std::string& name, const ModelSpec& spec) {
    auto model = build_model(spec);
    testing::fill_by_formula(*model, testing::read_pytorchcv_keys(name));
    model->to(c10::kCUDA);
    model->eval();
    const auto& expected = testing::parity().at(name);
    const auto input = testing::sine_tensor(expected.at("input_shape").get<std::vector<int64_t>>());
    at::NoGradGuard no_grad;
    const auto logits = model->forward(input.cuda()).cpu();
    const auto want = testing::json_tensor(expected.at("logits"));
    EXPECT_LE((logits - want).abs().max().item<double>(), 1e-3 * want.abs().max().item<double>()) << name;
  });
}

TEST(Cuda, QuantizedModelAgreesWithTheCpu) {
  QIMERA_REQUIRE_CUDA();
  // TF32 convolutions (PyTorch's default on Ampere and later) round inputs to 10 mantissa bits;
  // compare in float32.
  at::globalContext().setAllowTF32CuDNN(false);
  at::manual_seed(0);
  auto p = build_model(ModelSpec{Arch::ResNet20Cifar, 10, 3, 32});
  p->eval();
  quant::convert(*p, quant::QuantConfig{});
  const auto x = at::randn({16, 3, 32, 32});
  at::NoGradGuard no_grad;
  p->forward(x);  // observe on the CPU
  quant::set_observing(*p, false);
  const auto cpu = p->forward(x);
  p->to(c10::kCUDA);
  const auto gpu = p->forward(x.cuda()).cpu();
  // cuDNN and oneDNN sum in different orders; 4-bit activation quantization turns the last-bit
  // differences into whole steps wherever a value sits at a rounding boundary, and 19 quantized
  // layers compound them (measured on an H200: mean logit difference 2.6% of the mean logit).
  // The predictions must still agree.
  EXPECT_LE((gpu - cpu).abs().mean().item<double>(), 5e-2 * cpu.abs().mean().item<double>());
  EXPECT_TRUE(at::equal(gpu.argmax(1), cpu.argmax(1)));
}

}  // namespace
}  // namespace qimera::models
