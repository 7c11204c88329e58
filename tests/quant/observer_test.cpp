#include "qimera/core/error.h"
#include "qimera/quant/layers.h"
#include "qimera/quant/observer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qimera::quant {
namespace {

// Feeds a batch whose minimum is 0 and maximum 1, `updates` times; returns the range read after.
std::pair<float, float> constant_range(ObserverKind kind, int updates) {
  ObserverOptions options;
  options.kind = kind;
  auto state = initial_observer_state(options);
  const auto x = at::tensor({0.0f, 0.25f, 1.0f});
  for (int i = 0; i < updates; ++i) observe(options, state, x, 8);
  const auto [lo, hi] = observed_range(options, state);
  return {lo.item<float>(), hi.item<float>()};
}

TEST(Observer, ReferenceEmaInflatesThenSettles) {
  // method.md section 1: a constant maximum of 1.0 reads 5.3 after 2 updates, 1100 after 10,
  // ~3900 after 20, 490 after 50, 3.6 after 100, 1.01 after 150 and 1.0 from ~200 on.
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 1).second, 1.0, 1e-5);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 2).second, 5.26, 0.05);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 10).second, 1100, 60);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 20).second, 3900, 200);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 50).second, 490, 25);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 100).second, 3.6, 0.2);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 150).second, 1.01, 0.005);
  EXPECT_NEAR(constant_range(ObserverKind::ReferenceEma, 250).second, 1.0, 1e-4);
}

TEST(Observer, BiasCorrectedEmaReadsTheTrueAverageFromTheFirstUpdate) {
  for (int updates : {1, 2, 10, 20, 50, 100, 250}) {
    const auto [lo, hi] = constant_range(ObserverKind::Ema, updates);
    EXPECT_NEAR(lo, 0.0, 1e-6) << updates;
    EXPECT_NEAR(hi, 1.0, 1e-5) << updates;
  }
}

TEST(Observer, BiasCorrectedEmaWeightsRecentBatches) {
  ObserverOptions options;  // Ema, beta 0.9
  auto state = initial_observer_state(options);
  observe(options, state, at::tensor({0.0f, 1.0f}), 8);
  observe(options, state, at::tensor({0.0f, 3.0f}), 8);
  // (0.1*0.9*1 + 0.1*3) / (1 - 0.81) = 0.39 / 0.19
  EXPECT_NEAR(observed_range(options, state).second.item<float>(), 0.39 / 0.19, 1e-5);
}

TEST(Observer, MinMaxIncludesZeroAndKeepsExtremes) {
  ObserverOptions options;
  options.kind = ObserverKind::MinMax;
  auto state = initial_observer_state(options);
  observe(options, state, at::tensor({0.5f, 2.0f}), 8);
  observe(options, state, at::tensor({-1.0f, 1.0f}), 8);
  const auto [lo, hi] = observed_range(options, state);
  EXPECT_FLOAT_EQ(lo.item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(hi.item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(state.aux.item<float>(), 2.0f);
}

TEST(Observer, PercentileIgnoresRareOutliersAndAveragesBatches) {
  ObserverOptions options;
  options.kind = ObserverKind::Percentile;
  options.percentile = 99.0;
  auto state = initial_observer_state(options);
  auto x = at::linspace(0, 1, 10001);
  x[5000] = 1000.0f;  // one outlier
  observe(options, state, x, 8);
  observe(options, state, x * 3, 8);
  const auto [lo, hi] = observed_range(options, state);
  EXPECT_NEAR(hi.item<float>(), (0.99 + 2.97) / 2, 1e-3);
  EXPECT_NEAR(lo.item<float>(), (0.01 + 0.03) / 2, 1e-3);
}

// The range an Mse observer reads after one batch at `bits`.
std::pair<float, float> mse_range(const at::Tensor& x, int bits) {
  ObserverOptions options;
  options.kind = ObserverKind::Mse;
  auto state = initial_observer_state(options);
  observe(options, state, x, bits);
  const auto [lo, hi] = observed_range(options, state);
  return {lo.item<float>(), hi.item<float>()};
}

TEST(Observer, MseClipsAnOutlierWhenThatLowersTheErrorAndAveragesBatches) {
  // 4000 ones, a zero and one 50, at 2 bits (4 levels). The full range [0, 50] (step 16.7)
  // rounds every one to 0: summed error 4000. [0, 3] (step 1) keeps the ones exact and clips the
  // outlier to 3: error 47^2 = 2209, the least of the 100 candidates [0, 50 k / 100] (next best:
  // [0, 3.5], 111 + 46.5^2 = 2273; [0, 4], 444 + 46^2 = 2560).
  auto x = at::ones({4002});
  x[0] = 0.0f;
  x[1] = 50.0f;
  ObserverOptions options;
  options.kind = ObserverKind::Mse;
  auto state = initial_observer_state(options);
  observe(options, state, x, 2);
  EXPECT_NEAR(observed_range(options, state).second.item<float>(), 3.0f, 1e-4);
  observe(options, state, x * 2, 2);  // the same shape twice as large: [0, 6]
  const auto [lo, hi] = observed_range(options, state);
  EXPECT_NEAR(lo.item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(hi.item<float>(), 4.5f, 1e-4);
  EXPECT_FLOAT_EQ(state.aux.item<float>(), 2.0f);
}

TEST(Observer, MseClipsMoreAtFewerBits) {
  // Uniform values on [0, 1] clipped at c with L steps: error c^3 / (12 L^2) + (1 - c)^3 / 3, least
  // at c = 6/7 for 2 bits (L = 3) and at c = 510/511 for 8 bits, whose nearest candidate is 1.
  const auto x = at::linspace(0, 1, 10001);
  EXPECT_NEAR(mse_range(x, 8).second, 1.0f, 1e-5);
  EXPECT_NEAR(mse_range(x, 2).second, 6.0f / 7.0f, 0.015);
  EXPECT_NEAR(mse_range(x, 2).first, 0.0f, 1e-6);
}

TEST(Observer, SampledObserversSeeEveryPositionOfAPlane) {
  // Values are 1 except at every 4th position (a plane of 4 pixels, 0 at the first). A sample
  // taking every 4th value would see only zeros; the Mse sample (at most 4096) must not.
  const int64_t n = 4 * 4096;
  auto x = at::ones({n / 4, 4});
  x.select(1, 0).zero_();
  EXPECT_NEAR(mse_range(x, 8).second, 1.0f, 1e-5);
  // The Percentile sample (at most 2^20 values), with zeros at 7 of every 8 positions: the 99th
  // percentile is 1 only if the ones are sampled.
  ObserverOptions options;
  options.kind = ObserverKind::Percentile;
  options.percentile = 99.0;
  auto state = initial_observer_state(options);
  auto y = at::zeros({(int64_t{1} << 20), 8});
  y.select(1, 3).fill_(1.0f);
  observe(options, state, y, 8);
  EXPECT_NEAR(observed_range(options, state).second.item<float>(), 1.0f, 1e-5);
}

TEST(Observer, OptionsValidateAndRoundTrip) {
  EXPECT_THROW(parse_observer("median"), Error);
  ObserverOptions bad;
  bad.beta = 1.0;
  EXPECT_THROW(bad.validate(), Error);
  ObserverOptions o;
  o.kind = ObserverKind::Percentile;
  o.percentile = 99.9;
  const auto back = ObserverOptions::from_json(o.to_json());
  EXPECT_EQ(back.kind, o.kind);
  EXPECT_DOUBLE_EQ(back.percentile, 99.9);
  EXPECT_EQ(parse_observer("mse"), ObserverKind::Mse);
  EXPECT_EQ(to_string(ObserverKind::Mse), "mse");
}

TEST(QuantAct, ObservesWhileUnfixedAndFreezesWhenFixed) {
  QuantAct act(ActivationKind::ReLU);
  ObserverOptions options;
  act->attach_quantizer(4, options, Ste::Unclipped, c10::kCPU);
  act->forward(at::tensor({-1.0f, 0.0f, 2.0f}));
  EXPECT_NEAR(act->range().second.item<float>(), 2.0f, 1e-5);
  act->set_observing(false);
  act->forward(at::tensor({0.0f, 10.0f}));
  EXPECT_NEAR(act->range().second.item<float>(), 2.0f, 1e-5);
  // Fixed range [0, 2], 4 bits: 10 saturates at the top of the grid (2.0).
  EXPECT_NEAR(act->forward(at::tensor({10.0f})).item<float>(), 2.0f, 1e-6);
  // The observer state is saved with the module.
  EXPECT_EQ(act->named_buffers().size(), 3u);
  EXPECT_TRUE(act->named_buffers().contains("observer_lo"));
}

TEST(QuantAct, DisabledQuantizerGivesTheFloatActivation) {
  QuantAct act(ActivationKind::ReLU6);
  act->attach_quantizer(2, ObserverOptions{}, Ste::Unclipped, c10::kCPU);
  const auto x = at::randn({100}) * 5;
  act->set_enabled(false);
  EXPECT_TRUE(at::equal(act->forward(x), at::clamp(x, 0, 6)));
}

TEST(QuantAct, SetRangeReadsBackExactlyForEveryObserverKind) {
  for (auto kind : {ObserverKind::ReferenceEma, ObserverKind::Ema, ObserverKind::MinMax,
                    ObserverKind::Percentile}) {
    QuantAct act(ActivationKind::ReLU);
    ObserverOptions options;
    options.kind = kind;
    act->attach_quantizer(4, options, Ste::Unclipped, c10::kCPU);
    act->set_range(0.0f, 3.7f);
    EXPECT_FLOAT_EQ(act->range().second.item<float>(), 3.7f) << to_string(kind);
    EXPECT_FALSE(act->observing());
  }
}

}  // namespace
}  // namespace qimera::quant
