// Fake-quantization kernels on a ResNet-20-sized activation (batch 64 x 16 x 32 x 32): this
// project's single-pass kernel against the same formula as an ATen composition and against
// PyTorch's fused fake_quantize_per_tensor_affine (whose gradient is the clipped STE); and the
// percentile observer's 99.99th percentile by partial selection against at::quantile's full sort;
// and one update of each observer kind, which a warm-up forward pays once per activation layer
// (the mse kind's [100 x <=4096] search against one fake quantization of the whole tensor).
#include "qimera/core/runtime.h"
#include "qimera/quant/fake_quantize.h"
#include "qimera/quant/observer.h"
#include "qimera/quant/tail_quantile.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

namespace {

using namespace qimera::quant;

at::Tensor activation() { return at::randn({64, 16, 32, 32}).relu(); }

void BM_QimeraKernel(benchmark::State& state) {
  const auto x = activation();
  const auto p = affine_params(4, at::zeros({1}), at::full({1}, 2.5f));
  at::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(fake_quantize(x, p, 4, Ste::Unclipped));
  state.SetBytesProcessed(state.iterations() * x.numel() * 4);
}

void BM_AtenComposition(benchmark::State& state) {
  const auto x = activation();
  const auto p = affine_params(4, at::zeros({1}), at::full({1}, 2.5f));
  at::NoGradGuard no_grad;
  for (auto _ : state) {
    benchmark::DoNotOptimize((at::clamp(at::round(p.scale * x - p.zero_point), -8, 7) + p.zero_point) /
                             p.scale);
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 4);
}

void BM_PytorchFused(benchmark::State& state) {
  const auto x = activation();
  at::NoGradGuard no_grad;
  for (auto _ : state) {
    benchmark::DoNotOptimize(at::fake_quantize_per_tensor_affine(x, 2.5 / 15, -8, -8, 7));
  }
  state.SetBytesProcessed(state.iterations() * x.numel() * 4);
}

void BM_WeightPerChannel(benchmark::State& state) {
  const auto w = at::randn({64, 64, 3, 3});
  at::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(fake_quantize_weight(w, 4, Ste::Unclipped));
}

void BM_PercentileTailSelection(benchmark::State& state) {
  const auto x = activation().reshape({-1});
  for (auto _ : state) benchmark::DoNotOptimize(tail_quantile(x, 0.9999));
}

void BM_PercentileFullSort(benchmark::State& state) {
  const auto x = activation().reshape({-1});
  for (auto _ : state) benchmark::DoNotOptimize(at::quantile(x, 0.9999));
}

// One observer update at 3 bits (only mse depends on the width) on the activation above.
void BM_Observe(benchmark::State& state, ObserverKind kind) {
  const auto x = activation();
  ObserverOptions options;
  options.kind = kind;
  auto observer = initial_observer_state(options);
  for (auto _ : state) {
    observe(options, observer, x, 3);
    benchmark::DoNotOptimize(observer.hi.data_ptr<float>());
  }
}

BENCHMARK_CAPTURE(BM_Observe, ema, ObserverKind::Ema)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Observe, minmax, ObserverKind::MinMax)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Observe, percentile, ObserverKind::Percentile)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Observe, mse, ObserverKind::Mse)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QimeraKernel)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AtenComposition)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PytorchFused)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_WeightPerChannel)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PercentileTailSelection)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PercentileFullSort)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  qimera::tune_allocator();
  qimera::configure_threads(0);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
